#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <string>

#include "compat.h"
#include "constants.h"

namespace zcsend {

namespace {

constexpr unsigned kProbeEntries = 8;

struct Features {
  bool send_zc = false;
  bool sendmsg_zc = false;
  bool report_usage = false;
  bool fixed_buffers = false;
  bool send = false;
  bool splice = false;
  bool single_issuer = false;
  bool defer_taskrun = false;
};

std::string KernelRelease() {
  utsname name{};
  if (uname(&name) != 0) return "unknown";
  return name.release;
}

// Whether a throwaway ring accepts these setup flags.
bool SetupAccepts(unsigned flags) {
  io_uring ring{};
  io_uring_params params{};
  params.flags = flags;
  if (io_uring_queue_init_params(kProbeEntries, &ring, &params) != 0) return false;
  io_uring_queue_exit(&ring);
  return true;
}

// Register one small anonymous buffer: fails where the memlock limit or a
// policy forbids pinning.
bool FixedBuffersWork(io_uring* ring) {
  const size_t size = 4096;
  void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return false;
  iovec iov{memory, size};
  const bool ok = io_uring_register_buffers(ring, &iov, 1) == 0;
  if (ok) io_uring_unregister_buffers(ring);
  munmap(memory, size);
  return ok;
}

// Wait for one CQE (bounded), copy it out and consume it.
bool NextCqe(io_uring* ring, io_uring_cqe* out) {
  __kernel_timespec timeout{};
  timeout.tv_nsec = 500 * 1000 * 1000;
  io_uring_cqe* cqe = nullptr;
  if (io_uring_wait_cqe_timeout(ring, &cqe, &timeout) != 0 || cqe == nullptr) return false;
  *out = *cqe;
  io_uring_cqe_seen(ring, cqe);
  return true;
}

// IORING_SEND_ZC_REPORT_USAGE (6.2) cannot be probed: send one byte with it
// over UDP to ourselves on 127.0.0.1; -EINVAL means the kernel lacks it.
// Both CQEs (result, then the notification) are drained before returning.
bool ReportUsageWorks(io_uring* ring) {
  const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (sock < 0) return false;
  bool supported = false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
      connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    static const char kByte = 0;
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    io_uring_prep_send_zc(sqe, sock, &kByte, 1, 0, IORING_SEND_ZC_REPORT_USAGE);
    io_uring_sqe_set_data64(sqe, 1);
    io_uring_cqe cqe{};
    if (io_uring_submit(ring) == 1 && NextCqe(ring, &cqe)) {
      supported = cqe.res == 1;
      if (cqe.flags & IORING_CQE_F_MORE) NextCqe(ring, &cqe);  // the notification
    }
  }
  close(sock);
  return supported;
}

std::string SetupFailureReason(int err, const std::string& kernel) {
  switch (-err) {
    case EPERM:
      return "io_uring is disabled: io_uring_setup returned EPERM (check the kernel.io_uring_disabled "
             "sysctl, or a seccomp filter such as Docker's default profile)";
    case ENOSYS:
      return "io_uring is not available: io_uring_setup returned ENOSYS (kernel " + kernel +
             " built without io_uring, or the syscall is filtered)";
    default: {
      char buffer[128];
      const char* text = strerror_r(-err, buffer, sizeof buffer);
      return std::string("io_uring_setup failed: ") + text + " (" + ErrnoName(err) + ")";
    }
  }
}

Napi::Object FeaturesObject(Napi::Env env, const Features& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("sendZc", f.send_zc);
  o.Set("sendmsgZc", f.sendmsg_zc);
  o.Set("reportUsage", f.report_usage);
  o.Set("fixedBuffers", f.fixed_buffers);
  o.Set("send", f.send);
  o.Set("splice", f.splice);
  o.Set("singleIssuer", f.single_issuer);
  o.Set("deferTaskrun", f.defer_taskrun);
  return o;
}

}  // namespace

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string kernel = KernelRelease();
  Features features;
  std::string reason;
  int setup_errno = 0;

  io_uring ring{};
  const int err = io_uring_queue_init(kProbeEntries, &ring, 0);
  if (err < 0) {
    setup_errno = err;
    reason = SetupFailureReason(err, kernel);
  } else {
    io_uring_probe* probe = io_uring_get_probe_ring(&ring);  // NULL before 5.6
    if (probe != nullptr) {
      features.send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
      features.sendmsg_zc = io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC);
      features.send = io_uring_opcode_supported(probe, IORING_OP_SEND);
      features.splice = io_uring_opcode_supported(probe, IORING_OP_SPLICE);
      io_uring_free_probe(probe);
    }
    features.fixed_buffers = FixedBuffersWork(&ring);
    if (features.send_zc) features.report_usage = ReportUsageWorks(&ring);
    io_uring_queue_exit(&ring);
    features.single_issuer = SetupAccepts(IORING_SETUP_SINGLE_ISSUER);
    features.defer_taskrun =
        features.single_issuer && SetupAccepts(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
    if (!features.send_zc) {
      reason = "kernel " + kernel + " lacks IORING_OP_SEND_ZC (zero-copy sends need Linux 6.0 or newer)";
    }
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("available", reason.empty());
  result.Set("reason", reason.empty() ? env.Null() : Napi::String::New(env, reason));
  result.Set("errno", setup_errno == 0 ? env.Null() : Napi::Number::New(env, setup_errno));
  result.Set("kernel", kernel);
  result.Set("features", FeaturesObject(env, features));
  return result;
}

}  // namespace zcsend
