// The `constants` object and errno naming shared by the other files.
#pragma once

#include <napi.h>

#include <string>

namespace zcsend {

Napi::Object MakeConstants(Napi::Env env);

// "EPERM" for 1 (or -1); "E<n>" when the number has no name in our table.
std::string ErrnoName(int err);

// An Error like Node's system errors: message "<syscall> failed: <strerror> (<NAME>)",
// errno = -err (negative, as Node does), code = NAME, syscall.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

}  // namespace zcsend
