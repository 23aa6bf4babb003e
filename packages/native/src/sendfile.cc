#include "sendfile.h"

#include <errno.h>
#include <linux/types.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

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

// cachestat(2), Linux 6.5: the same number on every architecture. glibc 2.36 has no wrapper.
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

// From include/uapi/linux/mman.h (6.5), absent from older headers.
struct CachestatRange {
  __u64 off;
  __u64 len;
};
struct Cachestat {
  __u64 nr_cache;
  __u64 nr_dirty;
  __u64 nr_writeback;
  __u64 nr_evicted;
  __u64 nr_recently_evicted;
};

Napi::Value UncachedPages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, 0, "fd");
  const int64_t offset = IntArg(info, 1, "offset", 0, kMaxSafeInteger);
  const int64_t length = IntArg(info, 2, "length", 1, kMaxSafeInteger - offset);
  CachestatRange range{static_cast<__u64>(offset), static_cast<__u64>(length)};
  Cachestat stat{};
  if (syscall(__NR_cachestat, fd, &range, &stat, 0) != 0) return Napi::Number::New(env, -errno);
  // cachestat counts whole pages: those the range touches, first to last.
  const int64_t page = sysconf(_SC_PAGESIZE);
  const int64_t pages = (offset + length - 1) / page - offset / page + 1;
  const int64_t cached = static_cast<int64_t>(stat.nr_cache);
  return Napi::Number::New(env, static_cast<double>(cached >= pages ? 0 : pages - cached));
}

}  // namespace zcsend
