// Provided-buffer rings (IORING_REGISTER_PBUF_RING, kernel 5.19) and the
// multishot receive that draws from them (IORING_RECV_MULTISHOT, 6.0).
//
// The buffers are JS memory (one ArrayBufferView cut into equal buffers); the
// ring of buffer descriptors is ours. A receive CQE names the buffer it
// filled (IORING_CQE_F_BUFFER, id in the upper 16 bits of flags); JS reads it
// and hands it back with recycleBuffer(). Until then the kernel will not
// write into it. Idle connections hold no buffer, however many there are.
#include <errno.h>
#include <sys/mman.h>

#include <algorithm>

#include "args.h"
#include "ring.h"

namespace zcsend {

namespace {

constexpr uint32_t kMaxBuffers = 32768;  // the kernel's limit for one group
constexpr uint32_t kMaxBufferSize = 1U << 20;

Napi::Value Result(Napi::Env env, int value) { return Napi::Number::New(env, value); }

}  // namespace

Ring::BufRing* Ring::FindBufRing(uint32_t group) {
  for (auto& br : buf_rings_) {
    if (br->group == group) return br.get();
  }
  return nullptr;
}

void Ring::FreeBufRings() {
  for (auto& br : buf_rings_) munmap(br->entries, br->entries_bytes);
  buf_rings_.clear();
}

// Writes buffer `id` into the descriptor ring `offset` places past its tail;
// io_uring_buf_ring_advance then publishes every one written.
void Ring::Recycle(BufRing* br, uint32_t id, int offset) {
  io_uring_buf_ring_add(br->entries, br->base + static_cast<size_t>(id) * br->buffer_size, br->buffer_size,
                        static_cast<unsigned short>(id), io_uring_buf_ring_mask(br->count), offset);
}

void Ring::FlushRecycled() {
  for (auto& br : buf_rings_) {
    if (br->recycled.IsEmpty()) continue;
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env_, br->recycled.Value(), &type, &length, &data, nullptr, nullptr) != napi_ok ||
        type != napi_uint16_array || data == nullptr || length == 0) {
      continue;  // detached by JS: nothing can be queued there any more
    }
    auto* ids = static_cast<uint16_t*>(data);
    const size_t count = std::min<size_t>(ids[0], length - 1);
    if (count == 0) continue;
    int added = 0;
    for (size_t i = 1; i <= count; i++) {
      if (ids[i] >= br->count) continue;  // not one of ours: never hand the kernel a stray address
      Recycle(br.get(), ids[i], added++);
    }
    io_uring_buf_ring_advance(br->entries, added);
    ids[0] = 0;
  }
}

// registerBufRing(group, pool, bufferSize[, recycled]): the pool's length must be
// a power of two count of bufferSize-byte buffers. Every buffer starts out
// available. `recycled`, a Uint16Array of at least count + 1 elements, is where
// JS may queue ids to hand back without a call per buffer: recycled[0] holds
// how many ids follow; the ring takes them after each completion callback and
// before each submit, and sets recycled[0] back to 0.
Napi::Value Ring::RegisterBufRing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto group = static_cast<uint16_t>(IntArg(info, 0, "group", 0, UINT16_MAX));
  const ByteView pool = ViewArg(info, 1, "pool");
  const auto buffer_size = static_cast<uint32_t>(IntArg(info, 2, "bufferSize", 1, kMaxBufferSize));
  if (pool.length == 0 || pool.length % buffer_size != 0) {
    ThrowRangeError(env, "pool", "Its length must be a non-zero multiple of bufferSize.");
  }
  const size_t count = pool.length / buffer_size;
  if (count > kMaxBuffers || (count & (count - 1)) != 0) {
    ThrowRangeError(env, "pool", "It must hold a power of two buffers, at most 32768.");
  }
  Napi::Value recycled = info[3];
  const bool has_recycled = !recycled.IsUndefined() && !recycled.IsNull();
  if (has_recycled) {
    if (!recycled.IsTypedArray() || recycled.As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array) {
      ThrowTypeError(env, "recycled", "a Uint16Array");
    }
    if (recycled.As<Napi::TypedArray>().ElementLength() < count + 1) {
      ThrowRangeError(env, "recycled", "It must hold at least one element more than the pool has buffers.");
    }
  }
  if (!open_) return Result(env, -EBADFD);
  if (FindBufRing(group) != nullptr) return Result(env, -EEXIST);

  // The descriptor ring must be page aligned: an anonymous mapping is.
  const size_t bytes = count * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return Result(env, -errno);
  auto* entries = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(entries);
  reg.ring_entries = static_cast<uint32_t>(count);
  reg.bgid = group;
  const int err = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (err < 0) {
    munmap(mem, bytes);
    return Result(env, err);
  }
  io_uring_buf_ring_init(entries);
  const int mask = io_uring_buf_ring_mask(static_cast<uint32_t>(count));
  for (size_t i = 0; i < count; i++) {
    io_uring_buf_ring_add(entries, pool.data + i * buffer_size, buffer_size, static_cast<unsigned short>(i), mask,
                          static_cast<int>(i));
  }
  io_uring_buf_ring_advance(entries, static_cast<int>(count));

  auto br = std::make_unique<BufRing>();
  br->group = group;
  br->entries = entries;
  br->entries_bytes = bytes;
  br->base = pool.data;
  br->buffer_size = buffer_size;
  br->count = static_cast<uint32_t>(count);
  br->pool = Napi::Persistent(info[1]);
  if (has_recycled) {
    br->recycled = Napi::Persistent(recycled);
    recycled.As<Napi::Uint16Array>()[0] = 0;
  }
  buf_rings_.push_back(std::move(br));
  return Result(env, 0);
}

// recycleBuffer(group, bufferId): the buffer is the kernel's to fill again.
Napi::Value Ring::RecycleBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto group = static_cast<uint32_t>(IntArg(info, 0, "group", 0, UINT16_MAX));
  const auto id = static_cast<uint32_t>(IntArg(info, 1, "bufferId", 0, kMaxBuffers - 1));
  BufRing* br = open_ ? FindBufRing(group) : nullptr;
  if (br == nullptr) return Result(env, open_ ? -ENOENT : -EBADFD);
  if (id >= br->count) ThrowRangeError(env, "bufferId", "No such buffer in this group.");
  Recycle(br, id, 0);
  io_uring_buf_ring_advance(br->entries, 1);
  return Result(env, 0);
}

// unregisterBufRing(group): no receive draws from it afterwards (they fail
// with -ENOBUFS), and the kernel no longer writes into its pool.
Napi::Value Ring::UnregisterBufRing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto group = static_cast<uint32_t>(IntArg(info, 0, "group", 0, UINT16_MAX));
  if (!open_) return Result(env, -EBADFD);
  for (auto it = buf_rings_.begin(); it != buf_rings_.end(); ++it) {
    if ((*it)->group != group) continue;
    const int err = io_uring_unregister_buf_ring(&ring_, static_cast<int>(group));
    if (err < 0) return Result(env, err);
    munmap((*it)->entries, (*it)->entries_bytes);
    buf_rings_.erase(it);
    return Result(env, 0);
  }
  return Result(env, -ENOENT);
}

// recvMultishot(fd, group, userData): one receive that stays armed, posting a
// CQE with IORING_CQE_F_MORE per chunk into a buffer of `group`, until the
// peer ends (res 0), an error, -ENOBUFS (the group ran dry) or a cancel; the
// CQE without F_MORE is the last.
Napi::Value Ring::RecvMultishot(const Napi::CallbackInfo& info) {
  const int fd = FdArg(info, 0, "fd");
  const auto group = static_cast<uint16_t>(IntArg(info, 1, "group", 0, UINT16_MAX));
  const uint32_t user_data = U32Arg(info, 2, "userData");
  io_uring_sqe* sqe;
  if (const int err = AcquireSqe(&sqe)) return Result(info.Env(), err);
  io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = group;
  io_uring_sqe_set_data64(sqe, user_data);
  return Result(info.Env(), 0);
}

}  // namespace zcsend
