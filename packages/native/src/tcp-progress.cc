#include "tcp-progress.h"

#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "args.h"

namespace zcsend {

Napi::Value TcpBytesAcked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, 0, "fd");
  struct tcp_info ti = {};
  socklen_t len = sizeof(ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return Napi::Number::New(env, -errno);
  // An older kernel fills a shorter struct; the field is only there from Linux 4.1 on.
  if (len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked)) {
    return Napi::Number::New(env, -EOPNOTSUPP);
  }
  // A double holds it exactly up to 2^53 bytes (8 PiB acknowledged on one connection).
  return Napi::Number::New(env, static_cast<double>(ti.tcpi_bytes_acked));
}

}  // namespace zcsend
