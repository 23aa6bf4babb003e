#include "sendfile.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "args.h"

namespace zcsend {

// Offsets up to 2^53 - 1 (JS safe integers): files beyond 4 GiB work, off_t is 64-bit here.
static_assert(sizeof(off_t) == 8, "sendfile needs a 64-bit off_t");
constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;
// The kernel moves at most this much per call (MAX_RW_COUNT); asking for more is refused here.
constexpr int64_t kMaxCount = 0x7ffff000;

Napi::Value SendFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int out_fd = FdArg(info, 0, "outFd");
  const int in_fd = FdArg(info, 1, "inFd");
  off_t offset = static_cast<off_t>(IntArg(info, 2, "offset", 0, kMaxSafeInteger));
  const size_t count = static_cast<size_t>(IntArg(info, 3, "count", 0, kMaxCount));
  const ssize_t sent = sendfile(out_fd, in_fd, &offset, count);
  return Napi::Number::New(env, sent < 0 ? -errno : static_cast<double>(sent));
}

Napi::Value SendMore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, 0, "fd");
  const ByteView view = ViewArg(info, 1, "data");
  const ByteRange range = RangeArgs(info, 2, view);
  const ssize_t sent = send(fd, range.data, range.length, MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);
  return Napi::Number::New(env, sent < 0 ? -errno : static_cast<double>(sent));
}

}  // namespace zcsend
