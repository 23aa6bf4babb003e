// no-uring: run a command with io_uring blocked the way container runtimes block it.
//
//   no-uring [--errno=EPERM|ENOSYS|<n>] [--setup-only] -- command [args...]
//
// Installs a classic-BPF seccomp filter (no libseccomp) that makes io_uring_setup,
// io_uring_enter and io_uring_register fail with EPERM, as Docker's default profile does
// (they are absent from its allow-list, whose default action is ERRNO(EPERM)); everything else
// is allowed. --errno=ENOSYS imitates a kernel built without io_uring; --setup-only filters
// io_uring_setup alone. The filter survives execve and is inherited by every thread and child.
// Syscalls from a foreign ABI (e.g. i386 int 0x80 on x86-64) kill the process: their numbers
// mean other things, so the filter could not vouch for them.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_ARCH AUDIT_ARCH_RISCV64
#elif defined(__s390x__)
#define NATIVE_ARCH AUDIT_ARCH_S390X
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_ARCH AUDIT_ARCH_PPC64LE
#else
#error "no-uring: unsupported architecture"
#endif

// io_uring arrived after the syscall tables were unified: the same numbers on every arch above.
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif

static int parse_errno(const char *text) {
  if (strcmp(text, "EPERM") == 0) return EPERM;
  if (strcmp(text, "ENOSYS") == 0) return ENOSYS;
  if (strcmp(text, "EACCES") == 0) return EACCES;
  char *end = NULL;
  long value = strtol(text, &end, 10);
  if (end == text || *end != '\0' || value <= 0 || value > 4095) return -1;
  return (int)value;
}

static void usage(void) {
  fprintf(stderr, "usage: no-uring [--errno=EPERM|ENOSYS|<n>] [--setup-only] -- command [args...]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int err = EPERM;
  int setup_only = 0;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (strncmp(argv[i], "--errno=", 8) == 0) {
      err = parse_errno(argv[i] + 8);
      if (err < 0) usage();
    } else if (strcmp(argv[i], "--setup-only") == 0) {
      setup_only = 1;
    } else {
      break;  // the command starts here
    }
  }
  if (i >= argc) usage();

  const __u32 deny = SECCOMP_RET_ERRNO | ((__u32)err & SECCOMP_RET_DATA);
  struct sock_filter filter[] = {
      // Foreign ABI: numbers mean other syscalls there.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
      // The x32 ABI shares the arch value and sets bit 30 of the number: strip it.
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ~(__u32)0x40000000),
#endif
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, deny),
      // With --setup-only the two checks below are skipped by jumping to ALLOW.
      BPF_JUMP(BPF_JMP | BPF_JA, setup_only ? 4 : 0, 0, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, deny),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, deny),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {
      .len = (unsigned short)(sizeof filter / sizeof filter[0]),
      .filter = filter,
  };

  // Required to install a filter without CAP_SYS_ADMIN, and what runtimes set for containers.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    perror("no-uring: prctl(PR_SET_NO_NEW_PRIVS)");
    return 126;
  }
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
    perror("no-uring: prctl(PR_SET_SECCOMP)");
    return 126;
  }
  execvp(argv[i], &argv[i]);
  fprintf(stderr, "no-uring: cannot run %s: %s\n", argv[i], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
