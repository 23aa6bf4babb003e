// sendfile(2) for the file engine that sends synchronously on the JS thread.
#pragma once

#include <napi.h>

namespace zcsend {

// sendfile(outFd, inFd, offset, count) -> bytes sent (0 at end of file) or -errno.
// The offset is explicit (pread-like): the file's own position is never used or moved.
Napi::Value SendFile(const Napi::CallbackInfo& info);

}  // namespace zcsend
