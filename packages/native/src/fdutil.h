// Small fd helpers for pipes (the splice engine) and tests.
#pragma once

#include <napi.h>

namespace zcsend {

// pipe2(flags) -> [readFd, writeFd] or -errno. O_CLOEXEC is always added.
Napi::Value Pipe2(const Napi::CallbackInfo& info);
// fcntl(fd, F_SETPIPE_SZ, size) -> the pipe's new capacity or -errno.
Napi::Value SetPipeSize(const Napi::CallbackInfo& info);
// close(fd) -> 0 or -errno.
Napi::Value CloseFd(const Napi::CallbackInfo& info);

}  // namespace zcsend
