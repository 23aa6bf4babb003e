// Kernel ABI values (include/uapi/linux/io_uring.h, socket.h). They never change once released,
// so core keeps its own copy and works the same against the native ring and the fake backend.
export const IORING_CQE_F_MORE = 1 << 1;
export const IORING_CQE_F_NOTIF = 1 << 3;
export const IORING_SEND_ZC_REPORT_USAGE = 1 << 3;
/** Bit 31 of a notification's `res`: as an int32 this is negative, and it is not an error. */
export const IORING_NOTIF_USAGE_ZC_COPIED = 0x80000000;
export const MSG_WAITALL = 0x100;
/** user_data high word the native binding stamps on its own ASYNC_CANCEL requests. */
export const CANCEL_TAG_HI = 0x40000000;
/** Highest user_data core hands out; ids live in the low 32 bits. */
export const MAX_USER_DATA = 0xffffffff;
