// sendfile(2) and send(2) for the file paths that send synchronously on the JS thread.
#pragma once

#include <napi.h>

namespace zcsend {

// sendfile(outFd, inFd, offset, count) -> bytes sent (0 at end of file) or -errno.
// The offset is explicit (pread-like): the file's own position is never used or moved.
Napi::Value SendFile(const Napi::CallbackInfo& info);

// sendMore(fd, data, offset, length) -> bytes sent or -errno: one non-blocking send(2) with
// MSG_MORE, so that a response head waits in the socket for the sendfile(2) body that follows
// and both leave in the same segments (TCP_CORK without its two setsockopt calls).
Napi::Value SendMore(const Napi::CallbackInfo& info);

}  // namespace zcsend
