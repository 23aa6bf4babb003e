// Ring lifecycle: setup with fallback, completion polling on the JS thread's
// libuv loop, batched reaping into the shared Int32Array, and teardown (from
// close(), the GC finalizer, or the environment's cleanup).
#include "ring.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "addon.h"
#include "args.h"
#include "compat.h"
#include "constants.h"

namespace zcsend {

namespace {

constexpr unsigned kDefaultEntries = 256;
constexpr unsigned kMaxEntries = 32768;    // IORING_MAX_ENTRIES
constexpr unsigned kMaxCqEntries = 65536;  // IORING_MAX_CQ_ENTRIES
// Records in the shared completion array: [userDataLo, userDataHi, res, flags].
constexpr unsigned kCqeRecords = 1024;
constexpr unsigned kCqeInts = kCqeRecords * 4;
// Batches delivered per wake-up before yielding to the rest of the loop.
constexpr unsigned kMaxBatchesPerWake = 16;
// Empty rounds tolerated while the kernel still flags task work or overflow.
constexpr int kMaxIdleRounds = 8;

constexpr unsigned kDeferFlags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                 IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
constexpr unsigned kCoopFlags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
                                IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
constexpr unsigned kCoopSharedFlags =
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
constexpr unsigned kPlainFlags = 0;

struct SetupAttempt {
  unsigned flags;
  // DEFER_TASKRUN completions do not wake a poll on the ring fd: use an eventfd.
  bool eventfd;
};

constexpr SetupAttempt kAutoAttempts[] = {
    {kCoopFlags, false},
    {kDeferFlags, true},
    {kCoopSharedFlags, false},
    {kPlainFlags, false},
};
constexpr SetupAttempt kDeferAttempt[] = {{kDeferFlags, true}};
constexpr SetupAttempt kCoopAttempt[] = {{kCoopFlags, false}};
constexpr SetupAttempt kPlainAttempt[] = {{kPlainFlags, false}};

struct FlagName {
  unsigned flag;
  const char* name;
};

constexpr FlagName kSetupFlagNames[] = {
    {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"}, {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
    {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},   {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
    {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},       {IORING_SETUP_CQSIZE, "CQSIZE"},
};

unsigned SqFlags(const io_uring& ring) { return IO_URING_READ_ONCE(*ring.sq.kflags); }

}  // namespace

// The poll handle is heap-allocated because libuv finishes closing it on a
// later loop turn, possibly after the Ring itself was garbage collected.
struct Ring::PollBox {
  uv_poll_t handle;
  Ring* ring;  // null once the Ring has let go of the handle
  // Set when closing on environment teardown: completed in OnPollClosed.
  napi_async_cleanup_hook_handle finished_hook;
};

Napi::Function Ring::Define(Napi::Env env) {
  return DefineClass(
      env, "Ring",
      {
          InstanceAccessor("cqes", &Ring::GetCqes, nullptr, napi_enumerable),
          InstanceAccessor("setupFlags", &Ring::GetSetupFlags, nullptr, napi_enumerable),
          InstanceAccessor("sqEntries", &Ring::GetSqEntries, nullptr, napi_enumerable),
          InstanceAccessor("cqEntries", &Ring::GetCqEntries, nullptr, napi_enumerable),
          InstanceAccessor("overflow", &Ring::GetOverflow, nullptr, napi_enumerable),
          InstanceMethod("sendZc", &Ring::SendZc),
          InstanceMethod("sendZcFixed", &Ring::SendZcFixed),
          InstanceMethod("send", &Ring::Send),
          InstanceMethod("sendmsgZc", &Ring::SendmsgZc),
          InstanceMethod("sendtoZc", &Ring::SendtoZc),
          InstanceMethod("splice", &Ring::Splice),
          InstanceMethod("pollAdd", &Ring::PollAdd),
          InstanceMethod("cancel", &Ring::Cancel),
          InstanceMethod("registerBufferSlots", &Ring::RegisterBufferSlots),
          InstanceMethod("updateBuffer", &Ring::UpdateBuffer),
          InstanceMethod("registerFileSlots", &Ring::RegisterFileSlots),
          InstanceMethod("updateFile", &Ring::UpdateFile),
          InstanceMethod("registerBufRing", &Ring::RegisterBufRing),
          InstanceMethod("recycleBuffer", &Ring::RecycleBuffer),
          InstanceMethod("unregisterBufRing", &Ring::UnregisterBufRing),
          InstanceMethod("recvMultishot", &Ring::RecvMultishot),
          InstanceMethod("submit", &Ring::Submit),
          InstanceMethod("ref", &Ring::Ref),
          InstanceMethod("unref", &Ring::Unref),
          InstanceMethod("close", &Ring::Close),
      });
}

Ring::Ring(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Ring>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  Napi::Value options_value = info[0];
  if (!options_value.IsUndefined() && !options_value.IsNull() && !options_value.IsObject()) {
    ThrowTypeError(env, "options", "an object");
  }
  if (!info[1].IsFunction()) ThrowTypeError(env, "onCompletions", "a function");
  Napi::Object options = options_value.IsObject() ? options_value.As<Napi::Object>() : Napi::Object::New(env);

  const auto entries = static_cast<unsigned>(IntOption(options, "entries", kDefaultEntries, 1, kMaxEntries));
  const int64_t buffer_slots = IntOption(options, "bufferSlots", 0, 0, UINT32_MAX);
  const int64_t file_slots = IntOption(options, "fileSlots", 0, 0, UINT32_MAX);
  Mode mode = Mode::kAuto;
  Napi::Value mode_value = options.Get("mode");
  if (!mode_value.IsUndefined()) {
    const std::string name = mode_value.IsString() ? mode_value.As<Napi::String>().Utf8Value() : "";
    if (name == "auto") {
      mode = Mode::kAuto;
    } else if (name == "defer") {
      mode = Mode::kDefer;
    } else if (name == "coop") {
      mode = Mode::kCoop;
    } else if (name == "plain") {
      mode = Mode::kPlain;
    } else {
      ThrowTypeError(env, "options.mode", "one of 'auto', 'defer', 'coop', 'plain'");
    }
  }

  info.This().As<Napi::Object>().DefineProperty(
      Napi::PropertyDescriptor::Value(CallbackKey(env), info[1], napi_default));
  cqes_ = Napi::Persistent(static_cast<Napi::Object>(Napi::Int32Array::New(env, kCqeInts)));
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "zcsend:Ring");

  int err = Setup(mode, entries);
  if (err < 0) throw ErrnoError(env, err, "io_uring_setup");
  const char* failed = nullptr;
  if (buffer_slots > 0) {
    err = io_uring_register_buffers_sparse(&ring_, static_cast<unsigned>(buffer_slots));
    if (err < 0) failed = "io_uring_register_buffers_sparse";
  }
  if (failed == nullptr && file_slots > 0) {
    err = io_uring_register_files_sparse(&ring_, static_cast<unsigned>(file_slots));
    if (err < 0) failed = "io_uring_register_files_sparse";
  }
  if (failed == nullptr) {
    err = StartPolling();
    if (err < 0) failed = "uv_poll_start";
  }
  if (failed != nullptr) {
    Teardown(nullptr);
    throw ErrnoError(env, err, failed);
  }
  // Worker threads and process exit: close before the loop goes away.
  if (napi_add_async_cleanup_hook(env_, &Ring::OnEnvCleanup, this, &cleanup_hook_) != napi_ok) {
    cleanup_hook_ = nullptr;
  }
}

Ring::~Ring() { Teardown(nullptr); }

int Ring::Setup(Mode mode, unsigned entries) {
  const SetupAttempt* attempts = kAutoAttempts;
  size_t count = std::size(kAutoAttempts);
  switch (mode) {
    case Mode::kAuto:
      break;
    case Mode::kDefer:
      attempts = kDeferAttempt;
      count = 1;
      break;
    case Mode::kCoop:
      attempts = kCoopAttempt;
      count = 1;
      break;
    case Mode::kPlain:
      attempts = kPlainAttempt;
      count = 1;
      break;
  }
  // Two CQEs per SEND_ZC (result + notification): size the CQ at 4x the SQ.
  const unsigned cq_entries = std::min(std::max(entries * 4, 8U), kMaxCqEntries);
  int err = -EINVAL;
  for (size_t i = 0; i < count; i++) {
    io_uring_params params{};
    params.flags = attempts[i].flags | IORING_SETUP_CQSIZE;
    params.cq_entries = cq_entries;
    err = io_uring_queue_init_params(entries, &ring_, &params);
    if (err == -EINVAL && mode == Mode::kAuto) continue;  // older kernel: plainer flags
    if (err < 0) return err;

    if (attempts[i].eventfd) {
      const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      err = fd < 0 ? -errno : io_uring_register_eventfd(&ring_, fd);
      if (err < 0) {
        if (fd >= 0) close(fd);
        io_uring_queue_exit(&ring_);
        return err;
      }
      event_fd_ = fd;
    }
    open_ = true;
    setup_flags_ = params.flags;
    defer_taskrun_ = (params.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
    sq_entries_ = params.sq_entries;
    cq_entries_ = params.cq_entries;
    return 0;
  }
  return err;
}

int Ring::StartPolling() {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || loop == nullptr) return -EINVAL;
  auto* box = new PollBox{};
  box->ring = this;
  box->handle.data = box;
  const int fd = event_fd_ >= 0 ? event_fd_ : ring_.ring_fd;
  int err = uv_poll_init(loop, &box->handle, fd);
  if (err != 0) {
    delete box;  // not registered with the loop on failure
    return err;
  }
  err = uv_poll_start(&box->handle, UV_READABLE, &Ring::OnPoll);
  if (err != 0) {
    box->ring = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&box->handle), &Ring::OnPollClosed);
    return err;
  }
  // Starts unref'd: the owner refs it while ops are in flight.
  uv_unref(reinterpret_cast<uv_handle_t*>(&box->handle));
  poll_ = box;
  return 0;
}

void Ring::Teardown(napi_async_cleanup_hook_handle finished_hook) {
  if (cleanup_hook_ != nullptr && finished_hook == nullptr) napi_remove_async_cleanup_hook(cleanup_hook_);
  cleanup_hook_ = nullptr;
  if (poll_ != nullptr) {
    poll_->ring = nullptr;
    poll_->finished_hook = finished_hook;  // environment teardown waits for the close callback
    finished_hook = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_->handle), &Ring::OnPollClosed);
    poll_ = nullptr;
  }
  if (finished_hook != nullptr) napi_remove_async_cleanup_hook(finished_hook);
  if (open_) {
    open_ = false;
    koverflow_at_close_ = IO_URING_READ_ONCE(*ring_.cq.koverflow);
    if (event_fd_ >= 0) io_uring_unregister_eventfd(&ring_);
    // Synchronous: once unregistered, no receive can pick (and write into) a
    // JS pool buffer, even while the ring's own teardown runs on in the kernel.
    for (auto& br : buf_rings_) io_uring_unregister_buf_ring(&ring_, br->group);
    io_uring_queue_exit(&ring_);
  }
  FreeBufRings();
  if (event_fd_ >= 0) {
    close(event_fd_);
    event_fd_ = -1;
  }
}

void Ring::OnPollClosed(uv_handle_t* handle) {
  auto* box = static_cast<PollBox*>(handle->data);
  napi_async_cleanup_hook_handle finished_hook = box->finished_hook;
  delete box;
  if (finished_hook != nullptr) napi_remove_async_cleanup_hook(finished_hook);
}

void Ring::OnEnvCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  static_cast<Ring*>(arg)->Teardown(handle);
}

void Ring::OnPoll(uv_poll_t* handle, int /*status*/, int /*events*/) {
  auto* box = static_cast<PollBox*>(handle->data);
  if (box == nullptr || box->ring == nullptr) return;
  try {
    box->ring->Reap();
  } catch (...) {
    // Nothing may unwind into libuv. Deliver() already routed JS exceptions.
  }
}

void Ring::Reap() {
  if (!open_ || reaping_) return;
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  // A local handle keeps the wrapper (and so this object) alive while JS runs.
  Napi::Object self = Value();
  if (self.IsEmpty()) return;
  struct ReapingGuard {
    bool& flag;
    explicit ReapingGuard(bool& f) : flag(f) { flag = true; }
    ~ReapingGuard() { flag = false; }
  } guard(reaping_);

  if (event_fd_ >= 0) {
    // Signals coalesce and may be spurious: reset the counter, then drain the CQ fully.
    uint64_t count;
    const ssize_t n = read(event_fd_, &count, sizeof count);
    (void)n;
  }
  // DEFER_TASKRUN: completions wait as task work until this thread asks for them.
  bool get_events = defer_taskrun_;
  unsigned batches = 0;
  int idle = 0;
  while (open_) {
    unsigned sq_flags = SqFlags(ring_);
    if (sq_flags & IORING_SQ_CQ_OVERFLOW) overflow_seen_++;
    // GETEVENTS runs pending task work and flushes the overflow list into the CQ.
    if (get_events || (sq_flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0) {
      io_uring_get_events(&ring_);
    }
    get_events = false;
    const unsigned n = CopyCqes(CqeBuffer(env), kCqeRecords);
    if (n == 0) {
      sq_flags = SqFlags(ring_);
      if ((sq_flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) == 0 || ++idle > kMaxIdleRounds) break;
      continue;
    }
    idle = 0;
    Deliver(self, n);  // may close the ring
    if (open_) FlushRecycled();
    if (++batches == kMaxBatchesPerWake) {
      // Let the rest of the loop run. The ring fd is level-triggered; the
      // eventfd is not re-signalled for work already queued, so signal it.
      if (open_ && event_fd_ >= 0) {
        const uint64_t one = 1;
        const ssize_t w = write(event_fd_, &one, sizeof one);
        (void)w;
      }
      break;
    }
  }
}

unsigned Ring::CopyCqes(int32_t* out, unsigned capacity) {
  unsigned head;
  unsigned n = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (n == capacity) break;
    int32_t* record = out + static_cast<size_t>(n) * 4;
    record[0] = static_cast<int32_t>(static_cast<uint32_t>(cqe->user_data));
    record[1] = static_cast<int32_t>(static_cast<uint32_t>(cqe->user_data >> 32));
    record[2] = cqe->res;
    record[3] = static_cast<int32_t>(cqe->flags);
    n++;
  }
  if (n != 0) io_uring_cq_advance(&ring_, n);
  return n;
}

int32_t* Ring::CqeBuffer(Napi::Env env) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_status status = napi_get_typedarray_info(env, cqes_.Value(), &type, &length, &data, nullptr, nullptr);
  if (status == napi_ok && data != nullptr && length >= kCqeInts) return static_cast<int32_t*>(data);
  // JS detached the array's buffer (transferred it): replace it. `ring.cqes` returns the new one.
  Napi::Int32Array fresh = Napi::Int32Array::New(env, kCqeInts);
  cqes_.Reset(fresh, 1);
  return fresh.Data();
}

void Ring::Deliver(Napi::Object self, unsigned count) {
  Napi::Env env(env_);
  Napi::Value callback = self.Get(CallbackKey(env));
  if (!callback.IsFunction()) return;
  try {
    // MakeCallback with an async context: process.nextTick and microtasks run after it.
    callback.As<Napi::Function>().MakeCallback(
        self, {Napi::Number::New(env, count), Napi::Number::New(env, OverflowCount())}, *async_context_);
  } catch (const Napi::Error& error) {
    // Like any callback from the event loop: an 'uncaughtException'.
    napi_fatal_exception(env_, error.Value());
  }
}

Napi::Value Ring::GetCqes(const Napi::CallbackInfo& /*info*/) { return cqes_.Value(); }

Napi::Value Ring::GetSetupFlags(const Napi::CallbackInfo& info) {
  Napi::Array names = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (const FlagName& entry : kSetupFlagNames) {
    if (setup_flags_ & entry.flag) names.Set(i++, Napi::String::New(info.Env(), entry.name));
  }
  return names;
}

Napi::Value Ring::GetSqEntries(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), sq_entries_); }

Napi::Value Ring::GetCqEntries(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cq_entries_); }

double Ring::OverflowCount() const {
  const uint32_t dropped = open_ ? IO_URING_READ_ONCE(*ring_.cq.koverflow) : koverflow_at_close_;
  return static_cast<double>(overflow_seen_ + dropped);
}

Napi::Value Ring::GetOverflow(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), OverflowCount()); }

Napi::Value Ring::Ref(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
  return info.Env().Undefined();
}

Napi::Value Ring::Unref(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
  return info.Env().Undefined();
}

Napi::Value Ring::Close(const Napi::CallbackInfo& info) {
  Teardown(nullptr);
  return info.Env().Undefined();
}

}  // namespace zcsend
