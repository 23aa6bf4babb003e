// Registered (fixed) buffer and file tables. Sparse tables are created once;
// slots are then updated in place. Each call returns 0 or -errno.
#include <errno.h>
#include <sys/uio.h>

#include "args.h"
#include "ring.h"

namespace zcsend {

namespace {

Napi::Value Result(Napi::Env env, int ret) { return Napi::Number::New(env, ret < 0 ? ret : 0); }

}  // namespace

// registerBufferSlots(count)
Napi::Value Ring::RegisterBufferSlots(const Napi::CallbackInfo& info) {
  const uint32_t count = U32Arg(info, 0, "count");
  if (!open_) return Result(info.Env(), -EBADFD);
  return Result(info.Env(), io_uring_register_buffers_sparse(&ring_, count));
}

// updateBuffer(index, buf | null): the caller keeps `buf` alive while it is registered.
Napi::Value Ring::UpdateBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t index = U32Arg(info, 0, "index");
  iovec iov{nullptr, 0};  // base NULL, length 0: clear the slot
  if (!info[1].IsNull() && !info[1].IsUndefined()) {
    const ByteView view = ViewArg(info, 1, "buf");
    // Also catches detached buffers, which would otherwise silently clear the slot.
    if (view.length == 0) ThrowRangeError(env, "buf", "An empty buffer cannot be registered.");
    iov.iov_base = view.data;
    iov.iov_len = view.length;
  }
  if (!open_) return Result(env, -EBADFD);
  __u64 tag = 0;
  return Result(env, io_uring_register_buffers_update_tag(&ring_, index, &iov, &tag, 1));
}

// registerFileSlots(count)
Napi::Value Ring::RegisterFileSlots(const Napi::CallbackInfo& info) {
  const uint32_t count = U32Arg(info, 0, "count");
  if (!open_) return Result(info.Env(), -EBADFD);
  return Result(info.Env(), io_uring_register_files_sparse(&ring_, count));
}

// updateFile(index, fd): the slot takes a reference to the file itself; -1 clears it.
Napi::Value Ring::UpdateFile(const Napi::CallbackInfo& info) {
  const uint32_t index = U32Arg(info, 0, "index");
  int fd = static_cast<int>(IntArg(info, 1, "fd", -1, INT32_MAX));
  if (!open_) return Result(info.Env(), -EBADFD);
  return Result(info.Env(), io_uring_register_files_update(&ring_, index, &fd, 1));
}

}  // namespace zcsend
