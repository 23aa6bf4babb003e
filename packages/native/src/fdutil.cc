#include "fdutil.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "args.h"

namespace zcsend {

Napi::Value Pipe2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t flags = info[0].IsUndefined() ? 0 : U32Arg(info, 0, "flags");
  if ((flags & ~static_cast<uint32_t>(O_NONBLOCK | O_CLOEXEC | O_DIRECT)) != 0) {
    ThrowRangeError(env, "flags", "Only O_NONBLOCK, O_CLOEXEC and O_DIRECT are allowed.");
  }
  int fds[2];
  // Always close-on-exec: child processes must not inherit the splice pipes.
  if (pipe2(fds, static_cast<int>(flags) | O_CLOEXEC) != 0) return Napi::Number::New(env, -errno);
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, fds[0]));
  result.Set(1u, Napi::Number::New(env, fds[1]));
  return result;
}

Napi::Value SetPipeSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, 0, "fd");
  const int size = static_cast<int>(IntArg(info, 1, "size", 1, INT32_MAX));
  const int result = fcntl(fd, F_SETPIPE_SZ, size);
  return Napi::Number::New(env, result < 0 ? -errno : result);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, 0, "fd");
  // Linux releases the descriptor even when close reports EINTR: never retry.
  return Napi::Number::New(env, close(fd) == 0 ? 0 : -errno);
}

}  // namespace zcsend
