// One small function per opcode. Each validates its arguments (throwing on
// bad types), prepares exactly one SQE tagged with the caller's user_data and
// returns 0 or -errno. Only sendmsgZc and sendtoZc submit: their SQEs point
// at a msghdr / sockaddr that lives on this function's stack.
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "compat.h"
#include "ring.h"

namespace zcsend {

namespace {

constexpr uint32_t kMaxIovecs = 1024;  // UIO_MAXIOV

Napi::Value Result(Napi::Env env, int value) { return Napi::Number::New(env, value); }

// user_data: the op's id in the low 32 bits, nothing in the high bits.
void SetUserData(io_uring_sqe* sqe, uint32_t user_data) { io_uring_sqe_set_data64(sqe, user_data); }

// Fixed-buffer sends have their own method: a plain send must never be
// reinterpreted as an offset into registered buffer 0.
unsigned PlainZcFlags(uint32_t zc_flags) { return zc_flags & ~IORING_RECVSEND_FIXED_BUF; }

// An IPv4 or IPv6 literal (optionally with a %zone) and a port.
bool ParseAddress(const std::string& text, uint16_t port, sockaddr_storage* out, socklen_t* out_len) {
  std::memset(out, 0, sizeof *out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *out_len = sizeof(sockaddr_in);
    return true;
  }
  std::string host = text;
  uint32_t scope = 0;
  const size_t percent = text.find('%');
  if (percent != std::string::npos) {
    host = text.substr(0, percent);
    const std::string zone = text.substr(percent + 1);
    if (zone.empty()) return false;
    char* end = nullptr;
    const unsigned long numeric = std::strtoul(zone.c_str(), &end, 10);
    scope = (*end == '\0') ? static_cast<uint32_t>(numeric) : if_nametoindex(zone.c_str());
    if (scope == 0) return false;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) != 1) return false;
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  v6->sin6_scope_id = scope;
  *out_len = sizeof(sockaddr_in6);
  return true;
}

}  // namespace

int Ring::AcquireSqe(io_uring_sqe** out) {
  if (!open_) return -EBADFD;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // SQ full: hand what is queued to the kernel once, then try again.
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return -EBUSY;
  }
  *out = sqe;
  return 0;
}

int Ring::SubmitOwned(io_uring_sqe* sqe) {
  FlushRecycled();
  int submitted = io_uring_submit(&ring_);
  if (io_uring_sq_ready(&ring_) != 0) submitted = io_uring_submit(&ring_);  // e.g. stopped at a bad SQE
  // With IORING_FEAT_SUBMIT_STABLE (5.5+) a consumed SQE's msghdr, iovecs and
  // address have been copied by the kernel (measured on 6.18 even for a linked
  // SENDMSG_ZC whose issue is deferred). SQEs are consumed in order and ours
  // is the newest, so "nothing left in the SQ" means ours was consumed.
  if (io_uring_sq_ready(&ring_) == 0) return 0;
  // Still queued: the kernel has not read it (no SQPOLL), so it is safe to
  // rewrite. Turn it into a NOP that posts no CQE and report the failure.
  io_uring_prep_nop(sqe);
  sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, 0);
  return submitted < 0 ? submitted : -EAGAIN;
}

// sendZc(fd, buf, offset, length, msgFlags, zcFlags, userData)
Napi::Value Ring::SendZc(const Napi::CallbackInfo& info) {
  const int fd = FdArg(info, 0, "fd");
  const ByteRange range = RangeArgs(info, 2, ViewArg(info, 1, "buf"));
  const uint32_t msg_flags = U32Arg(info, 4, "msgFlags");
  const uint32_t zc_flags = U32Arg(info, 5, "zcFlags");
  const uint32_t user_data = U32Arg(info, 6, "userData");
  io_uring_sqe* sqe;
  if (const int err = AcquireSqe(&sqe)) return Result(info.Env(), err);
  io_uring_prep_send_zc(sqe, fd, range.data, range.length, static_cast<int>(msg_flags), PlainZcFlags(zc_flags));
  SetUserData(sqe, user_data);
  return Result(info.Env(), 0);
}

// sendZcFixed(fd, bufIndex, buf, offset, length, msgFlags, zcFlags, userData)
Napi::Value Ring::SendZcFixed(const Napi::CallbackInfo& info) {
  const int fd = FdArg(info, 0, "fd");
  const auto buf_index = static_cast<unsigned>(IntArg(info, 1, "bufIndex", 0, UINT16_MAX));
  // `buf` only locates the range: the kernel checks it lies inside slot bufIndex (-EFAULT if not).
  const ByteRange range = RangeArgs(info, 3, ViewArg(info, 2, "buf"));
  const uint32_t msg_flags = U32Arg(info, 5, "msgFlags");
  const uint32_t zc_flags = U32Arg(info, 6, "zcFlags");
  const uint32_t user_data = U32Arg(info, 7, "userData");
  io_uring_sqe* sqe;
  if (const int err = AcquireSqe(&sqe)) return Result(info.Env(), err);
  io_uring_prep_send_zc_fixed(sqe, fd, range.data, range.length, static_cast<int>(msg_flags), zc_flags,
                              buf_index);
  SetUserData(sqe, user_data);
  return Result(info.Env(), 0);
}

// send(fd, buf, offset, length, msgFlags, userData)
Napi::Value Ring::Send(const Napi::CallbackInfo& info) {
  const int fd = FdArg(info, 0, "fd");
  const ByteRange range = RangeArgs(info, 2, ViewArg(info, 1, "buf"));
  const uint32_t msg_flags = U32Arg(info, 4, "msgFlags");
  const uint32_t user_data = U32Arg(info, 5, "userData");
  io_uring_sqe* sqe;
  if (const int err = AcquireSqe(&sqe)) return Result(info.Env(), err);
  io_uring_prep_send(sqe, fd, range.data, range.length, static_cast<int>(msg_flags));
  SetUserData(sqe, user_data);
  return Result(info.Env(), 0);
}

// sendmsgZc(fd, bufs, msgFlags, zcFlags, userData) -- submits.
Napi::Value Ring::SendmsgZc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, 0, "fd");
  if (!info[1].IsArray()) ThrowTypeError(env, "bufs", "an array of ArrayBufferViews");
  Napi::Array bufs = info[1].As<Napi::Array>();
  const uint32_t count = bufs.Length();
  if (count == 0 || count > kMaxIovecs) ThrowRangeError(env, "bufs", "It must hold 1 to 1024 buffers.");
  std::vector<iovec> iov(count);
  double total = 0;
  for (uint32_t i = 0; i < count; i++) {
    const ByteView view = ViewValue(env, bufs.Get(i), "bufs[i]");
    iov[i].iov_base = view.data;
    iov[i].iov_len = view.length;
    total += static_cast<double>(view.length);
  }
  if (total > kMaxTransfer) ThrowRangeError(env, "bufs", "The total length must be <= 2147479552.");
  const uint32_t msg_flags = U32Arg(info, 2, "msgFlags");
  const uint32_t zc_flags = U32Arg(info, 3, "zcFlags");
  const uint32_t user_data = U32Arg(info, 4, "userData");

  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  io_uring_sqe* sqe;
  if (const int err = AcquireSqe(&sqe)) return Result(env, err);
  io_uring_prep_sendmsg_zc(sqe, fd, &msg, msg_flags);
  sqe->ioprio = static_cast<uint16_t>(PlainZcFlags(zc_flags));
  SetUserData(sqe, user_data);
  return Result(env, SubmitOwned(sqe));
}

// sendtoZc(fd, buf, offset, length, msgFlags, zcFlags, port, address, userData) -- submits.
Napi::Value Ring::SendtoZc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, 0, "fd");
  const ByteRange range = RangeArgs(info, 2, ViewArg(info, 1, "buf"));
  const uint32_t msg_flags = U32Arg(info, 4, "msgFlags");
  const uint32_t zc_flags = U32Arg(info, 5, "zcFlags");
  const auto port = static_cast<uint16_t>(IntArg(info, 6, "port", 0, 65535));
  if (!info[7].IsString()) ThrowTypeError(env, "address", "of type string");
  const std::string address = info[7].As<Napi::String>().Utf8Value();
  const uint32_t user_data = U32Arg(info, 8, "userData");
  sockaddr_storage addr;
  socklen_t addr_len = 0;
  if (!ParseAddress(address, port, &addr, &addr_len)) {
    ThrowTypeError(env, "address", "an IPv4 or IPv6 address literal");
  }
  io_uring_sqe* sqe;
  if (const int err = AcquireSqe(&sqe)) return Result(env, err);
  io_uring_prep_send_zc(sqe, fd, range.data, range.length, static_cast<int>(msg_flags), PlainZcFlags(zc_flags));
  io_uring_prep_send_set_addr(sqe, reinterpret_cast<const sockaddr*>(&addr), static_cast<uint16_t>(addr_len));
  SetUserData(sqe, user_data);
  return Result(env, SubmitOwned(sqe));
}

// splice(fdIn, offIn, fdOut, offOut, length, spliceFlags, sqeFlags, userData)
Napi::Value Ring::Splice(const Napi::CallbackInfo& info) {
  constexpr int64_t kMaxOffset = INT64_C(1) << 53;
  const int fd_in = FdArg(info, 0, "fdIn");
  const int64_t off_in = IntArg(info, 1, "offIn", -1, kMaxOffset);
  const int fd_out = FdArg(info, 2, "fdOut");
  const int64_t off_out = IntArg(info, 3, "offOut", -1, kMaxOffset);
  const auto length = static_cast<unsigned>(IntArg(info, 4, "length", 0, static_cast<int64_t>(kMaxTransfer)));
  const uint32_t splice_flags = U32Arg(info, 5, "spliceFlags");
  const auto sqe_flags = static_cast<uint8_t>(IntArg(info, 6, "sqeFlags", 0, UINT8_MAX));
  const uint32_t user_data = U32Arg(info, 7, "userData");
  io_uring_sqe* sqe;
  if (const int err = AcquireSqe(&sqe)) return Result(info.Env(), err);
  io_uring_prep_splice(sqe, fd_in, off_in, fd_out, off_out, length, splice_flags);
  sqe->flags = sqe_flags;
  SetUserData(sqe, user_data);
  return Result(info.Env(), 0);
}

// pollAdd(fd, events, sqeFlags, userData): one-shot IORING_OP_POLL_ADD; `res` is the ready
// mask. With IOSQE_FIXED_FILE in sqeFlags `fd` is a file-table slot. Linked before a splice
// into a non-blocking socket, it waits for writability (splice itself returns -EAGAIN).
Napi::Value Ring::PollAdd(const Napi::CallbackInfo& info) {
  const int fd = FdArg(info, 0, "fd");
  const auto events = static_cast<unsigned>(IntArg(info, 1, "events", 0, UINT16_MAX));
  const auto sqe_flags = static_cast<uint8_t>(IntArg(info, 2, "sqeFlags", 0, UINT8_MAX));
  const uint32_t user_data = U32Arg(info, 3, "userData");
  io_uring_sqe* sqe;
  if (const int err = AcquireSqe(&sqe)) return Result(info.Env(), err);
  io_uring_prep_poll_add(sqe, fd, events);
  sqe->flags = sqe_flags;
  SetUserData(sqe, user_data);
  return Result(info.Env(), 0);
}

// cancel(userData): its own CQE carries userDataHi = CANCEL_TAG_HI.
Napi::Value Ring::Cancel(const Napi::CallbackInfo& info) {
  const uint32_t target = U32Arg(info, 0, "userData");
  io_uring_sqe* sqe;
  if (const int err = AcquireSqe(&sqe)) return Result(info.Env(), err);
  io_uring_prep_cancel64(sqe, target, 0);
  io_uring_sqe_set_data64(sqe, (static_cast<uint64_t>(kCancelTagHi) << 32) | target);
  return Result(info.Env(), 0);
}

// submit(): number of SQEs submitted, or -errno.
Napi::Value Ring::Submit(const Napi::CallbackInfo& info) {
  if (!open_) return Result(info.Env(), -EBADFD);
  FlushRecycled();
  return Result(info.Env(), io_uring_submit(&ring_));
}

}  // namespace zcsend
