#include "constants.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include <cstdlib>

#include "compat.h"

namespace zcsend {

namespace {

struct ErrnoEntry {
  const char* name;
  int value;
};

// The errno values the io_uring send paths and their callers care about.
constexpr ErrnoEntry kErrnos[] = {
    {"EPERM", EPERM},           {"ENOENT", ENOENT},         {"EINTR", EINTR},
    {"EBADF", EBADF},           {"EAGAIN", EAGAIN},         {"ENOMEM", ENOMEM},
    {"EFAULT", EFAULT},         {"EBUSY", EBUSY},           {"EEXIST", EEXIST},
    {"EINVAL", EINVAL},         {"EPIPE", EPIPE},           {"ENOSYS", ENOSYS},
    {"EBADFD", EBADFD},         {"ENOTSOCK", ENOTSOCK},     {"EDESTADDRREQ", EDESTADDRREQ},
    {"EMSGSIZE", EMSGSIZE},     {"EOPNOTSUPP", EOPNOTSUPP}, {"ENETUNREACH", ENETUNREACH},
    {"ECONNRESET", ECONNRESET}, {"ENOBUFS", ENOBUFS},       {"ENOTCONN", ENOTCONN},
    {"ETIMEDOUT", ETIMEDOUT},   {"ECONNREFUSED", ECONNREFUSED}, {"EHOSTUNREACH", EHOSTUNREACH},
    {"EALREADY", EALREADY},     {"ECANCELED", ECANCELED},   {"ENXIO", ENXIO},
    {"EACCES", EACCES},         {"ENFILE", ENFILE},         {"EMFILE", EMFILE},
    {"ENODEV", ENODEV},         {"EOVERFLOW", EOVERFLOW},   {"EAFNOSUPPORT", EAFNOSUPPORT},
    {"EADDRNOTAVAIL", EADDRNOTAVAIL}, {"EISCONN", EISCONN},
};

void SetNumber(Napi::Object target, const char* name, double value) {
  target.Set(name, Napi::Number::New(target.Env(), value));
}

}  // namespace

std::string ErrnoName(int err) {
  const int value = std::abs(err);
  for (const ErrnoEntry& entry : kErrnos) {
    if (entry.value == value) return entry.name;
  }
  return "E" + std::to_string(value);
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  const int value = std::abs(err);
  const std::string name = ErrnoName(value);
  char buffer[128];
  // GNU strerror_r returns the message (possibly not in buffer).
  const char* text = strerror_r(value, buffer, sizeof buffer);
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + " failed: " + text + " (" + name + ")");
  error.Set("errno", Napi::Number::New(env, -value));
  error.Set("code", Napi::String::New(env, name));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

Napi::Object MakeConstants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  SetNumber(c, "IORING_CQE_F_MORE", IORING_CQE_F_MORE);
  SetNumber(c, "IORING_CQE_F_NOTIF", IORING_CQE_F_NOTIF);
  SetNumber(c, "IORING_CQE_F_BUFFER", IORING_CQE_F_BUFFER);
  SetNumber(c, "IORING_CQE_BUFFER_SHIFT", IORING_CQE_BUFFER_SHIFT);
  SetNumber(c, "IORING_CQE_F_SOCK_NONEMPTY", IORING_CQE_F_SOCK_NONEMPTY);
  SetNumber(c, "IORING_SEND_ZC_REPORT_USAGE", IORING_SEND_ZC_REPORT_USAGE);
  SetNumber(c, "IORING_NOTIF_USAGE_ZC_COPIED", IORING_NOTIF_USAGE_ZC_COPIED);
  SetNumber(c, "IORING_RECVSEND_POLL_FIRST", IORING_RECVSEND_POLL_FIRST);
  SetNumber(c, "IORING_RECVSEND_FIXED_BUF", IORING_RECVSEND_FIXED_BUF);
  SetNumber(c, "IOSQE_IO_LINK", IOSQE_IO_LINK);
  SetNumber(c, "IOSQE_IO_HARDLINK", IOSQE_IO_HARDLINK);
  SetNumber(c, "IOSQE_ASYNC", IOSQE_ASYNC);
  SetNumber(c, "IOSQE_FIXED_FILE", IOSQE_FIXED_FILE);
  SetNumber(c, "SPLICE_F_FD_IN_FIXED", SPLICE_F_FD_IN_FIXED);
  SetNumber(c, "SPLICE_F_MOVE", SPLICE_F_MOVE);
  SetNumber(c, "SPLICE_F_NONBLOCK", SPLICE_F_NONBLOCK);
  SetNumber(c, "SPLICE_F_MORE", SPLICE_F_MORE);
  SetNumber(c, "MSG_WAITALL", MSG_WAITALL);
  SetNumber(c, "MSG_NOSIGNAL", MSG_NOSIGNAL);
  SetNumber(c, "MSG_DONTWAIT", MSG_DONTWAIT);
  SetNumber(c, "MSG_MORE", MSG_MORE);
  SetNumber(c, "O_NONBLOCK", O_NONBLOCK);
  SetNumber(c, "O_CLOEXEC", O_CLOEXEC);
  SetNumber(c, "CANCEL_TAG_HI", kCancelTagHi);

  Napi::Object errnos = Napi::Object::New(env);
  for (const ErrnoEntry& entry : kErrnos) SetNumber(errnos, entry.name, entry.value);
  errnos.Freeze();
  c.Set("errno", errnos);
  c.Freeze();
  return c;
}

}  // namespace zcsend
