// Ring: one io_uring owned by the JS thread that created it.
//
// The object is stateless about ops: every op method prepares one SQE with
// the caller's user_data (low 32 bits) and returns 0 or -errno. Completions
// are copied in batches into a shared Int32Array and announced with one JS
// call per batch, from a uv_poll_t on the thread's own event loop.
//
// Files: ring.cc (setup, polling, reaping, teardown), ops.cc (one function per
// opcode), register.cc (registered buffer and file tables).
#pragma once

#include <liburing.h>
#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace zcsend {

class Ring : public Napi::ObjectWrap<Ring> {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit Ring(const Napi::CallbackInfo& info);
  ~Ring() override;

  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

 private:
  enum class Mode { kAuto, kDefer, kCoop, kPlain };
  struct PollBox;  // heap-allocated uv_poll_t that may outlive the Ring
  // A provided-buffer ring (buf-ring.cc): the kernel picks one of `count`
  // buffers of `buffer_size` bytes from the JS-owned `pool` for each receive.
  struct BufRing {
    uint16_t group;
    io_uring_buf_ring* entries;
    size_t entries_bytes;
    uint8_t* base;
    uint32_t buffer_size;
    uint32_t count;
    Napi::Reference<Napi::Value> pool;  // keeps the memory alive while the kernel may write it
    // Optional Uint16Array where JS queues buffer ids to hand back: [count, id, id, ...].
    Napi::Reference<Napi::Value> recycled;
  };

  // --- ring.cc: lifecycle ---------------------------------------------------
  int Setup(Mode mode, unsigned entries);
  int StartPolling();
  void Teardown(napi_async_cleanup_hook_handle finished_hook);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnPollClosed(uv_handle_t* handle);
  static void OnEnvCleanup(napi_async_cleanup_hook_handle handle, void* arg);

  // --- ring.cc: completions -------------------------------------------------
  void Reap();
  unsigned CopyCqes(int32_t* out, unsigned capacity);
  int32_t* CqeBuffer(Napi::Env env);
  double OverflowCount() const;
  void Deliver(Napi::Object self, unsigned count);

  // --- ops.cc helpers ---------------------------------------------------------
  // 0 and *sqe set, or -EBADFD (closed) / -EBUSY (SQ full even after a submit).
  int AcquireSqe(io_uring_sqe** sqe);
  // Submit now and make sure `sqe` (the newest SQE) was consumed by the kernel,
  // which has then copied everything it points at. If it was not, it is
  // turned into a silent NOP and the error is returned.
  int SubmitOwned(io_uring_sqe* sqe);

  // --- JS accessors (ring.cc) -----------------------------------------------
  Napi::Value GetCqes(const Napi::CallbackInfo& info);
  Napi::Value GetSetupFlags(const Napi::CallbackInfo& info);
  Napi::Value GetSqEntries(const Napi::CallbackInfo& info);
  Napi::Value GetCqEntries(const Napi::CallbackInfo& info);
  Napi::Value GetOverflow(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  // --- JS op methods (ops.cc) -----------------------------------------------
  Napi::Value SendZc(const Napi::CallbackInfo& info);
  Napi::Value SendZcFixed(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value SendmsgZc(const Napi::CallbackInfo& info);
  Napi::Value SendtoZc(const Napi::CallbackInfo& info);
  Napi::Value Splice(const Napi::CallbackInfo& info);
  Napi::Value PollAdd(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Submit(const Napi::CallbackInfo& info);

  // --- JS registration methods (register.cc) ---------------------------------
  Napi::Value RegisterBufferSlots(const Napi::CallbackInfo& info);
  Napi::Value UpdateBuffer(const Napi::CallbackInfo& info);
  Napi::Value RegisterFileSlots(const Napi::CallbackInfo& info);
  Napi::Value UpdateFile(const Napi::CallbackInfo& info);

  // --- JS provided-buffer methods (buf-ring.cc) --------------------------------
  Napi::Value RegisterBufRing(const Napi::CallbackInfo& info);
  Napi::Value RecycleBuffer(const Napi::CallbackInfo& info);
  Napi::Value UnregisterBufRing(const Napi::CallbackInfo& info);
  Napi::Value RecvMultishot(const Napi::CallbackInfo& info);
  BufRing* FindBufRing(uint32_t group);
  // Hands back the ids JS queued in each group's `recycled` array (after every completion
  // callback and before every submit, so JS needs no call per buffer).
  void FlushRecycled();
  void Recycle(BufRing* br, uint32_t id, int offset);
  // After the kernel is done with them (ring exited or group unregistered).
  void FreeBufRings();

  napi_env env_;
  io_uring ring_{};
  bool open_ = false;
  bool reaping_ = false;
  // Completions are queued as task work until this thread asks for them.
  bool defer_taskrun_ = false;
  unsigned setup_flags_ = 0;
  unsigned sq_entries_ = 0;
  unsigned cq_entries_ = 0;
  int event_fd_ = -1;
  PollBox* poll_ = nullptr;
  napi_async_cleanup_hook_handle cleanup_hook_ = nullptr;
  uint64_t overflow_seen_ = 0;
  uint32_t koverflow_at_close_ = 0;
  Napi::ObjectReference cqes_;  // Int32Array of kCqeRecords * 4
  std::unique_ptr<Napi::AsyncContext> async_context_;
  std::vector<std::unique_ptr<BufRing>> buf_rings_;
};

}  // namespace zcsend
