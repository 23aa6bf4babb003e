{
  # Built by scripts/build.mjs, which checks for liburing first and passes
  # -Dliburing_a=... -Dliburing_include=... (and -Dsanitize=1 on request).
  "variables": {
    "liburing_a%": "/usr/lib/x86_64-linux-gnu/liburing.a",
    "liburing_include%": "/usr/include",
    "sanitize%": 0
  },
  "targets": [
    {
      "target_name": "zcsend_native",
      "sources": [
        "src/addon.cc",
        "src/args.cc",
        "src/buf-ring.cc",
        "src/constants.cc",
        "src/fdutil.cc",
        "src/ops.cc",
        "src/probe.cc",
        "src/register.cc",
        "src/ring.cc",
        "src/tcp-progress.cc",
        "src/sendfile.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "include_dirs": ["<(liburing_include)"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-O3", "-Wno-unused-parameter"],
      "cflags_cc!": ["-O3", "-std=gnu++17", "-fno-exceptions"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility-inlines-hidden"],
      # liburing is linked statically: the addon needs no liburing.so at run
      # time, and --exclude-libs keeps its symbols private to the addon.
      "libraries": ["<(liburing_a)"],
      "ldflags": ["-Wl,--exclude-libs,ALL", "-Wl,--as-needed"],
      "conditions": [
        ["sanitize==1", {
          "cflags": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
