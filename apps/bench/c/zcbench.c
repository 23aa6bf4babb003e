// zcbench: the C reference for the `sender` suite.
//
//   zcbench sink [port]                         accept connections on 127.0.0.1, read and discard;
//                                               prints "listening <port>" once ready
//   zcbench send <host> <port> <mode> <chunk> <seconds> <warmup-seconds>
//       mode: zc   IORING_OP_SEND_ZC, MSG_WAITALL, one op in flight (the next after the first CQE)
//             ring IORING_OP_SEND, MSG_WAITALL, one op in flight
//             send send(2) on a blocking socket
//       prints one JSON line: bytes, seconds and this process's CPU seconds over the measured
//       window (after the warm-up), plus notification counts for zc.
//
// The loop is the same as the Node driver's: one TCP connection, the same buffer sent again and
// again in `chunk`-byte sends, the clock checked after every completion.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// Missing from liburing 2.3's headers (kernel 6.2 uapi).
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

static void die(const char *what, int err) {
  fprintf(stderr, "zcbench: %s: %s\n", what, strerror(err));
  exit(1);
}

// The harness reports this competitor as skipped (not failed): io_uring or the opcode is not
// usable here (sysctl, seccomp, old kernel), which is a property of the machine.
static void skip(const char *what, int err) {
  printf("skip %s: %s\n", what, strerror(err));
  fflush(stdout);
  exit(3);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// CPU time of the whole process (all threads, io-wq workers included), like Node's process.cpuUsage().
static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int run_sink(int port) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket", errno);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind", errno);
  if (listen(lfd, 64) != 0) die("listen", errno);
  socklen_t len = sizeof addr;
  getsockname(lfd, (struct sockaddr *)&addr, &len);
  printf("listening %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  size_t size = 4u << 20;
  char *buf = malloc(size);
  if (!buf) die("malloc", ENOMEM);
  // One connection at a time: the harness runs one sender at a time.
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      die("accept", errno);
    }
    for (;;) {
      ssize_t n = recv(fd, buf, size, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    close(fd);
  }
  return 0;
}

static int connect_to(const char *host, int port, int nonblocking) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", errno);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die("inet_pton", EINVAL);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect", errno);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Node's sockets are non-blocking (libuv); the ring modes use the same so io_uring arms its poll the same way.
  if (nonblocking) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

struct ring_state {
  struct io_uring ring;
  const char *setup;
  long notifications_pending;
  long notifications;
  long copied;
};

// The best setup the kernel accepts, as the addon does: single issuer + cooperative task work
// (the flag the addon prefers since DEFER_TASKRUN's eventfd wakes libuv late), else plain.
static void ring_open(struct ring_state *rs) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  if (io_uring_queue_init_params(64, &rs->ring, &p) == 0) {
    rs->setup = "SINGLE_ISSUER|COOP_TASKRUN";
    return;
  }
  int ret = io_uring_queue_init(64, &rs->ring, 0);
  if (ret < 0) skip("io_uring unavailable (io_uring_queue_init)", -ret);
  rs->setup = "plain";
}

// Submits one send and reaps until its first CQE; notifications are counted as they come.
// Returns the bytes the kernel accepted.
static long ring_send_once(struct ring_state *rs, int fd, const char *buf, size_t chunk, int zc) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&rs->ring);
  if (zc) {
    io_uring_prep_send_zc(sqe, fd, buf, chunk, MSG_WAITALL, 0);
    sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
  } else {
    io_uring_prep_send(sqe, fd, buf, chunk, MSG_WAITALL);
  }
  sqe->user_data = 1;
  long result = -1;
  int have_first = 0;
  int ret = io_uring_submit_and_wait(&rs->ring, 1);
  if (ret < 0) die("io_uring_submit_and_wait", -ret);
  while (!have_first) {
    struct io_uring_cqe *cqe;
    ret = io_uring_wait_cqe(&rs->ring, &cqe);
    if (ret < 0) die("io_uring_wait_cqe", -ret);
    if (cqe->flags & IORING_CQE_F_NOTIF) {
      rs->notifications_pending--;
      rs->notifications++;
      if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) rs->copied++;
    } else {
      if (cqe->flags & IORING_CQE_F_MORE) rs->notifications_pending++;
      result = cqe->res;
      have_first = 1;
    }
    io_uring_cqe_seen(&rs->ring, cqe);
  }
  if (result == -EINVAL || result == -EOPNOTSUPP || result == -ENOSYS) skip(zc ? "SEND_ZC unsupported" : "IORING_OP_SEND unsupported", (int)-result);
  if (result < 0) die("send completion", (int)-result);
  return result;
}

static void ring_drain(struct ring_state *rs) {
  while (rs->notifications_pending > 0) {
    struct io_uring_cqe *cqe;
    int ret = io_uring_wait_cqe(&rs->ring, &cqe);
    if (ret < 0) die("io_uring_wait_cqe", -ret);
    if (cqe->flags & IORING_CQE_F_NOTIF) {
      rs->notifications_pending--;
      rs->notifications++;
      if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) rs->copied++;
    }
    io_uring_cqe_seen(&rs->ring, cqe);
  }
}

static long plain_send_once(int fd, const char *buf, size_t chunk) {
  size_t done = 0;
  while (done < chunk) {
    ssize_t n = send(fd, buf + done, chunk - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("send", errno);
    }
    done += (size_t)n;
  }
  return (long)done;
}

static int run_send(const char *host, int port, const char *mode, size_t chunk, double seconds, double warmup) {
  int zc = strcmp(mode, "zc") == 0;
  int ring_mode = zc || strcmp(mode, "ring") == 0;
  if (!ring_mode && strcmp(mode, "send") != 0) {
    fprintf(stderr, "zcbench: unknown mode %s\n", mode);
    return 2;
  }
  char *buf = aligned_alloc(4096, (chunk + 4095) / 4096 * 4096);
  if (!buf) die("aligned_alloc", ENOMEM);
  memset(buf, 'z', chunk);
  int fd = connect_to(host, port, ring_mode);
  struct ring_state rs = {0};
  if (ring_mode) ring_open(&rs);

  double t0 = now_seconds();
  double start = t0, cpu_start = 0, end = 0;
  long long bytes = 0;
  int measuring = 0;
  for (;;) {
    long n = ring_mode ? ring_send_once(&rs, fd, buf, chunk, zc) : plain_send_once(fd, buf, chunk);
    double t = now_seconds();
    if (!measuring) {
      if (t - t0 >= warmup) {
        measuring = 1;
        start = t;
        cpu_start = cpu_seconds();
      }
      continue;
    }
    bytes += n;
    if (t - start >= seconds) {
      end = t;
      break;
    }
  }
  double cpu = cpu_seconds() - cpu_start;
  if (ring_mode) ring_drain(&rs);
  printf("{\"bytes\":%lld,\"seconds\":%.6f,\"cpuSeconds\":%.6f,\"mode\":\"%s\",\"ringSetup\":\"%s\",\"notifications\":%ld,\"copiedNotifications\":%ld}\n",
         bytes, end - start, cpu, mode, ring_mode ? rs.setup : "none", rs.notifications, rs.copied);
  fflush(stdout);
  if (ring_mode) io_uring_queue_exit(&rs.ring);
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "sink") == 0) return run_sink(argc >= 3 ? atoi(argv[2]) : 0);
  if (argc == 8 && strcmp(argv[1], "send") == 0) {
    long chunk = atol(argv[5]);
    if (chunk <= 0) {
      fprintf(stderr, "zcbench: bad chunk size %s\n", argv[5]);
      return 2;
    }
    return run_send(argv[2], atoi(argv[3]), argv[4], (size_t)chunk, atof(argv[6]), atof(argv[7]));
  }
  fprintf(stderr, "usage: zcbench sink [port] | zcbench send <host> <port> zc|ring|send <chunk> <seconds> <warmup>\n");
  return 2;
}
