// Kernel ABI constants that liburing's headers may lack.
//
// Values are the kernel's UAPI (include/uapi/linux/io_uring.h); each is only
// defined when the installed liburing does not already define it. liburing
// 2.3 (Debian bookworm) has everything up to SENDMSG_ZC but not the 6.2
// zero-copy usage report. Opcodes are enum members in liburing, so they
// cannot be tested with #ifndef: we require liburing >= 2.3 (the build script
// checks) and assert their ABI values instead.
#pragma once

#include <liburing.h>

// --- io_uring_setup flags (SINGLE_ISSUER: 6.0, DEFER_TASKRUN: 6.1) ---------
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

// --- SQ ring flags ----------------------------------------------------------
#ifndef IORING_SQ_CQ_OVERFLOW
#define IORING_SQ_CQ_OVERFLOW (1U << 1)
#endif
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)
#endif

// --- CQE flags --------------------------------------------------------------
#ifndef IORING_CQE_F_MORE
#define IORING_CQE_F_MORE (1U << 1)
#endif
#ifndef IORING_CQE_F_NOTIF
#define IORING_CQE_F_NOTIF (1U << 3)
#endif

// --- send/recv flags in sqe->ioprio ----------------------------------------
#ifndef IORING_RECVSEND_POLL_FIRST
#define IORING_RECVSEND_POLL_FIRST (1U << 0)
#endif
#ifndef IORING_RECVSEND_FIXED_BUF
#define IORING_RECVSEND_FIXED_BUF (1U << 2)
#endif
// Kernel 6.2: ask the notification to report whether the data was copied.
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
// Bit in a notification CQE's res when IORING_SEND_ZC_REPORT_USAGE was set
// and the kernel had to copy (loopback, local delivery, no SG support...).
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

// --- splice -----------------------------------------------------------------
#ifndef SPLICE_F_FD_IN_FIXED
#define SPLICE_F_FD_IN_FIXED (1U << 31)
#endif

// --- opcodes: ABI values (kernel 6.0) ---------------------------------------
static_assert(IORING_OP_SEND == 26, "unexpected IORING_OP_SEND");
static_assert(IORING_OP_SPLICE == 30, "unexpected IORING_OP_SPLICE");
static_assert(IORING_OP_SEND_ZC == 47, "liburing >= 2.3 required (IORING_OP_SEND_ZC)");
static_assert(IORING_OP_SENDMSG_ZC == 48, "liburing >= 2.3 required (IORING_OP_SENDMSG_ZC)");

namespace zcsend {

// High 32 bits of the user_data of our own ASYNC_CANCEL SQEs, so their CQEs
// can never be mistaken for an op's CQE (ops use the low 32 bits only).
constexpr unsigned kCancelTagHi = 0x40000000U;

// Largest byte count one SQE may carry: res is an int32, and the kernel caps
// a single transfer at MAX_RW_COUNT (INT_MAX rounded down to a page).
constexpr double kMaxTransfer = 0x7ffff000;

}  // namespace zcsend
