// MB of file body per sender CPU-second on loopback TCP: synchronous sendfile(2) into a
// non-blocking socket (waits by poll(2) or by an io_uring POLL_ADD) vs the splice engine's ring
// chain (file -> pipe -> socket, linked, the socket in the ring's file table). The measurement
// behind the sendfile file engine (packages/core README, "Why sendfile for hot files").
//
//   gcc -O2 -o sendfile-vs-splice sendfile-vs-splice.c -l:liburing.a
//   ./sendfile-vs-splice sendfile|sendfile-ring|splice <file> <total-bytes>
//
// The sender runs on CPU 0, a reader child on CPU 1; the file is sent whole, again and again,
// until <total-bytes>. CPU time is getrusage(RUSAGE_SELF): every thread, io-wq workers included.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { PAIRS_PER_CHAIN = 4, SOCKET_SLOT = 0 };
enum { UD_FILL = 1, UD_DRAIN = 2, UD_POLL = 3 };

static struct io_uring ring;
static long waits;

static void die(const char *what, int err) {
  fprintf(stderr, "%s: %s\n", what, strerror(err));
  exit(1);
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity", errno);
}

static double cpu_seconds(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static struct io_uring_cqe *wait_one(void) {
  struct io_uring_cqe *cqe;
  int rc = io_uring_wait_cqe(&ring, &cqe);
  if (rc < 0) die("io_uring_wait_cqe", -rc);
  return cqe;
}

static void ring_poll_out(void) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  io_uring_prep_poll_add(sqe, SOCKET_SLOT, POLLOUT);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_submit(&ring);
  io_uring_cqe_seen(&ring, wait_one());
}

// What nginx does: sendfile until EAGAIN, then wait for the socket to take more.
static void send_by_sendfile(int sock, int fd, off_t size, int wait_on_ring) {
  off_t off = 0;
  while (off < size) {
    ssize_t n = sendfile(sock, fd, &off, size - off);
    if (n > 0) continue;
    if (n < 0 && errno == EAGAIN) {
      waits++;
      if (wait_on_ring) {
        ring_poll_out();
      } else {
        struct pollfd p = {.fd = sock, .events = POLLOUT};
        poll(&p, 1, -1);
      }
      continue;
    }
    die("sendfile", n < 0 ? errno : EIO);
  }
}

static void prep_splice(int in, int64_t off_in, int out, unsigned len, unsigned flags, unsigned sqe_flags, uint64_t ud) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  io_uring_prep_splice(sqe, in, off_in, out, -1, len, flags);
  sqe->flags |= sqe_flags;
  sqe->user_data = ud;
}

// The splice engine's chains: [POLL ->] drain, then pairs of fill -> drain, all linked.
static void send_by_splice(int fd, off_t size, int pipe_r, int pipe_w, unsigned pipe_size) {
  off_t next = 0, sent = 0;
  unsigned in_pipe = 0;
  int full = 0;
  while (sent < size) {
    int n = 0;
    if (in_pipe > 0) {
      if (full) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_poll_add(sqe, SOCKET_SLOT, POLLOUT);
        sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;
        sqe->user_data = UD_POLL;
        n++;
        waits++;
      }
      prep_splice(pipe_r, -1, SOCKET_SLOT, in_pipe, SPLICE_F_MOVE, IOSQE_FIXED_FILE | IOSQE_IO_LINK, UD_DRAIN | ((uint64_t)in_pipe << 8));
      n++;
    }
    off_t off = next;
    for (int pairs = 0; pairs < PAIRS_PER_CHAIN && off < size; pairs++) {
      unsigned len = size - off < pipe_size ? (unsigned)(size - off) : pipe_size;
      prep_splice(fd, off, pipe_w, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK, IOSQE_IO_LINK, UD_FILL | ((uint64_t)len << 8));
      prep_splice(pipe_r, -1, SOCKET_SLOT, len, SPLICE_F_MOVE, IOSQE_FIXED_FILE | IOSQE_IO_LINK, UD_DRAIN | ((uint64_t)len << 8));
      n += 2;
      off += len;
    }
    io_uring_submit(&ring);  // the last SQE's link flag ends the chain at the submission's end
    full = 0;
    for (int i = 0; i < n; i++) {
      struct io_uring_cqe *cqe = wait_one();
      int kind = cqe->user_data & 0xff, res = cqe->res;
      unsigned len = cqe->user_data >> 8;
      io_uring_cqe_seen(&ring, cqe);
      if (kind == UD_FILL && res > 0) {
        in_pipe += res;
        next += res;
      } else if (kind == UD_DRAIN && res > 0) {
        in_pipe -= res;
        sent += res;
        if ((unsigned)res < len) full = 1;
      } else if (kind == UD_DRAIN && res == -EAGAIN) {
        full = 1;
      } else if (res < 0 && res != -ECANCELED) {
        die(kind == UD_POLL ? "poll" : "splice", -res);
      }
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s sendfile|sendfile-ring|splice <file> <total-bytes>\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  int fd = open(argv[2], O_RDONLY);
  if (fd < 0) die(argv[2], errno);
  struct stat st;
  fstat(fd, &st);
  long rounds = atol(argv[3]) / st.st_size;
  if (rounds < 1) rounds = 1;

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t addr_len = sizeof addr;
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1) != 0) die("listen", errno);
  getsockname(listener, (struct sockaddr *)&addr, &addr_len);
  pid_t reader = fork();
  if (reader == 0) {
    pin(1);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect", errno);
    static char buf[256 * 1024];
    while (recv(c, buf, sizeof buf, 0) > 0) {
    }
    _exit(0);
  }
  pin(0);
  int sock = accept(listener, NULL, NULL);
  fcntl(sock, F_SETFL, O_NONBLOCK);  // like libuv's and nginx's sockets

  int rc = io_uring_queue_init(64, &ring, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  if (rc < 0) rc = io_uring_queue_init(64, &ring, 0);
  if (rc < 0) die("io_uring_queue_init", -rc);
  if ((rc = io_uring_register_files(&ring, &sock, 1)) < 0) die("io_uring_register_files", -rc);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) die("pipe2", errno);
  int pipe_size = fcntl(pipe_fds[1], F_SETPIPE_SZ, 1 << 20);
  if (pipe_size < 0) pipe_size = 64 * 1024;

  int splice_mode = strcmp(mode, "splice") == 0;
  int ring_wait = strcmp(mode, "sendfile-ring") == 0;
  if (!splice_mode && !ring_wait && strcmp(mode, "sendfile") != 0) die(mode, EINVAL);
  double cpu0 = 0, t0 = 0;
  for (long i = -3; i < rounds; i++) {  // 3 unmeasured warm-up rounds
    if (i == 0) waits = 0, cpu0 = cpu_seconds(), t0 = now();
    if (splice_mode) send_by_splice(fd, st.st_size, pipe_fds[0], pipe_fds[1], (unsigned)pipe_size);
    else send_by_sendfile(sock, fd, st.st_size, ring_wait);
  }
  double cpu = cpu_seconds() - cpu0, wall = now() - t0, mb = (double)rounds * st.st_size / 1e6;
  printf("%-14s %10lld B  %6.0f MB/sender-cpu-s  %6.0f MB/s  waits/file %.2f\n", mode, (long long)st.st_size, mb / cpu, mb / wall,
         (double)waits / rounds);
  shutdown(sock, SHUT_WR);
  close(sock);
  waitpid(reader, NULL, 0);
  return 0;
}
