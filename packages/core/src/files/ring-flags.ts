// Kernel ABI values the splice engine passes to the ring (include/uapi/linux/io_uring.h, splice.h,
// poll.h). Fixed once released; kept here so the engine works the same on the fake ring.
export const IOSQE_FIXED_FILE = 1 << 0;
export const IOSQE_IO_LINK = 1 << 2;
export const SPLICE_F_MOVE = 0x1;
export const SPLICE_F_NONBLOCK = 0x2;
export const POLLOUT = 0x4;
/**
 * A fill into an empty pipe takes one pipe slot per page it touches. With larger pages the
 * engine's fills may come back short (never blocked: SPLICE_F_NONBLOCK), which it handles.
 */
export const PAGE_SIZE = 4096;
