// sendfile(2) and send(2) for the file paths that send synchronously on the JS thread, and
// cachestat(2), which tells whether such a send would wait for the disk.
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

// uncachedPages(fd, offset, length) -> pages of [offset, offset + length) not in the page cache
// (0: a sendfile of the range reads no disk), or -errno: -ENOSYS before Linux 6.5, -EPERM when
// the caller neither owns the file nor may write it (the kernel's rule against page-cache side
// channels). length >= 1.
Napi::Value UncachedPages(const Napi::CallbackInfo& info);

}  // namespace zcsend
