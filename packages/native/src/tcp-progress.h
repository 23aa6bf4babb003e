// What the kernel knows about a TCP connection's progress, for telling a slow peer from a stalled one.
#pragma once

#include <napi.h>

namespace zcsend {

// tcpBytesAcked(fd) -> bytes of payload the peer has acknowledged so far (tcp_info's
// tcpi_bytes_acked, monotonic over the connection's life), or -errno: -ENOPROTOOPT or
// -EOPNOTSUPP for a socket that is not TCP, -EOPNOTSUPP too when the kernel's tcp_info is too
// old to carry the field, -EBADF/-ENOTSOCK for a bad fd.
Napi::Value TcpBytesAcked(const Napi::CallbackInfo& info);

}  // namespace zcsend
