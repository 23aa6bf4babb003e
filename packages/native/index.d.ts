/** Result of the kernel feature probe. Never throws: `reason` says why io_uring is unusable. */
export interface NativeProbe {
  available: boolean;
  reason: string | null;
  /** -errno from io_uring_setup when unavailable (e.g. -1 EPERM, -38 ENOSYS), else null. */
  errno: number | null;
  kernel: string;
  features: {
    sendZc: boolean;
    sendmsgZc: boolean;
    reportUsage: boolean;
    fixedBuffers: boolean;
    send: boolean;
    splice: boolean;
    singleIssuer: boolean;
    deferTaskrun: boolean;
  };
}

export interface RingOptions {
  /** SQ entries (power of two, default 256). The CQ is sized to at least 2x. */
  entries?: number;
  /** Force a setup mode instead of the best one the kernel accepts (for measurement). */
  mode?: 'auto' | 'defer' | 'coop' | 'plain';
  /** Sparse registered-buffer table size to create up front (0 = none). */
  bufferSlots?: number;
  /** Sparse registered-file table size to create up front (0 = none). */
  fileSlots?: number;
}

/**
 * One io_uring per JS thread. Every op method prepares one SQE and returns 0, or -errno.
 * Methods marked "submits" also call io_uring_submit before returning (their SQE points at
 * memory that native code owns only for the duration of the call).
 * Completions arrive through `onCompletions(count, overflow)` (`overflow`: what the `overflow`
 * getter says at that moment): `cqes` holds `count` records of 4 int32:
 * [userDataLo, userDataHi, res, flags]. The callback may run several times per loop turn
 * when more CQEs are ready than `cqes` holds.
 */
export declare class NativeRing {
  constructor(options: RingOptions, onCompletions: (count: number, overflow: number) => void);
  readonly cqes: Int32Array;
  /** e.g. ['SINGLE_ISSUER','COOP_TASKRUN','TASKRUN_FLAG'] */
  readonly setupFlags: string[];
  readonly sqEntries: number;
  readonly cqEntries: number;
  /** Cumulative count of CQ overflow events observed (kernel cq.koverflow + IORING_SQ_CQ_OVERFLOW seen). */
  readonly overflow: number;

  sendZc(fd: number, buf: ArrayBufferView, offset: number, length: number, msgFlags: number, zcFlags: number, userData: number): number;
  /** `buf` is the buffer registered at `bufIndex`; offset/length select the range inside it. */
  sendZcFixed(fd: number, bufIndex: number, buf: ArrayBufferView, offset: number, length: number, msgFlags: number, zcFlags: number, userData: number): number;
  /** Plain IORING_OP_SEND (copying), same ordering domain as the zc sends. */
  send(fd: number, buf: ArrayBufferView, offset: number, length: number, msgFlags: number, userData: number): number;
  /** IORING_OP_SENDMSG_ZC over several buffers (e.g. header + body). Submits. */
  sendmsgZc(fd: number, bufs: ArrayBufferView[], msgFlags: number, zcFlags: number, userData: number): number;
  /** SEND_ZC with addr2/addr_len (sendto form, UDP). `address` is an IPv4 or IPv6 literal. Submits. */
  sendtoZc(fd: number, buf: ArrayBufferView, offset: number, length: number, msgFlags: number, zcFlags: number, port: number, address: string, userData: number): number;
  /** IORING_OP_SPLICE. With SPLICE_F_FD_IN_FIXED in spliceFlags fdIn is a file-table slot; with IOSQE_FIXED_FILE in sqeFlags fdOut is. offIn -1 = current position. */
  splice(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number, spliceFlags: number, sqeFlags: number, userData: number): number;
  /** One-shot IORING_OP_POLL_ADD; `res` is the ready mask (e.g. POLLOUT = 4). With IOSQE_FIXED_FILE in sqeFlags `fd` is a slot. */
  pollAdd(fd: number, events: number, sqeFlags: number, userData: number): number;
  /** IORING_OP_ASYNC_CANCEL by user_data. Its own CQE carries userDataHi = constants.CANCEL_TAG_HI. */
  cancel(userData: number): number;
  /** Sparse registered-buffer table of `count` slots (replaces none; call once). */
  registerBufferSlots(count: number): number;
  /** Put `buf` in slot `index` (null clears it). The caller keeps `buf` alive while registered and in use. */
  updateBuffer(index: number, buf: ArrayBufferView | null): number;
  registerFileSlots(count: number): number;
  /** Put `fd` in slot `index` (-1 clears it). The slot holds the file itself, not the number. */
  updateFile(index: number, fd: number): number;
  /**
   * Provided-buffer ring `group` over `pool`, cut into buffers of `bufferSize` bytes (a power of
   * two count, at most 32768), every one available to the kernel. The ring keeps `pool` alive
   * while registered. 0 or -errno (-EEXIST: group taken).
   * `recycled` (at least count + 1 elements) lets JS hand buffers back without a call each:
   * write the ids after `recycled[0]` and their number in `recycled[0]`; the ring takes them after
   * every completion callback and before every submit, and resets `recycled[0]` to 0.
   */
  registerBufRing(group: number, pool: ArrayBufferView, bufferSize: number, recycled?: Uint16Array): number;
  /** Hand buffer `bufferId` of `group` back to the kernel (after reading what a receive put there). */
  recycleBuffer(group: number, bufferId: number): number;
  /** After this no receive picks (or writes into) a buffer of `group`. */
  unregisterBufRing(group: number): number;
  /**
   * Multishot IORING_OP_RECV drawing buffers from `group`: one CQE per chunk received, with
   * IORING_CQE_F_BUFFER and the buffer id in `flags >>> IORING_CQE_BUFFER_SHIFT`, and F_MORE while
   * it stays armed. The CQE without F_MORE is the last: res 0 (peer ended), -ENOBUFS (the group
   * ran dry: arm it again), -ECANCELED, or another -errno.
   */
  recvMultishot(fd: number, group: number, userData: number): number;
  /** io_uring_submit: number submitted, or -errno. */
  submit(): number;
  /** Keep / stop keeping the event loop alive while waiting for completions. Starts unref'd. */
  ref(): void;
  unref(): void;
  /** Stop polling and tear the ring down. Idempotent. */
  close(): void;
}

export interface NativeConstants {
  IORING_CQE_F_MORE: number;
  IORING_CQE_F_NOTIF: number;
  IORING_SEND_ZC_REPORT_USAGE: number;
  /** A receive CQE names its provided buffer: id = flags >>> IORING_CQE_BUFFER_SHIFT. */
  IORING_CQE_F_BUFFER: number;
  IORING_CQE_BUFFER_SHIFT: number;
  IORING_CQE_F_SOCK_NONEMPTY: number;
  IORING_NOTIF_USAGE_ZC_COPIED: number;
  IORING_RECVSEND_POLL_FIRST: number;
  IOSQE_IO_LINK: number;
  IOSQE_FIXED_FILE: number;
  SPLICE_F_FD_IN_FIXED: number;
  SPLICE_F_MOVE: number;
  SPLICE_F_NONBLOCK: number;
  MSG_WAITALL: number;
  MSG_NOSIGNAL: number;
  MSG_DONTWAIT: number;
  CANCEL_TAG_HI: number;
  // Added with the implementation (additive): values callers need for the flags they pass.
  IORING_RECVSEND_FIXED_BUF: number;
  IOSQE_IO_HARDLINK: number;
  IOSQE_ASYNC: number;
  SPLICE_F_MORE: number;
  MSG_MORE: number;
  /** pipe2() flags. */
  O_NONBLOCK: number;
  O_CLOEXEC: number;
  /** errno numbers by name, e.g. ECANCELED: 125 */
  errno: Record<string, number>;
}

export interface NativeBinding {
  probe(): NativeProbe;
  Ring: typeof NativeRing;
  constants: NativeConstants;
  /** Extra helpers for tests and pipes. pipe2 always adds O_CLOEXEC. */
  pipe2(flags: number): [number, number] | number;
  setPipeSize(fd: number, size: number): number;
  closeFd(fd: number): number;
  /**
   * Payload bytes the TCP peer has acknowledged so far (tcp_info tcpi_bytes_acked, monotonic), or
   * -errno (-ENOPROTOOPT/-EOPNOTSUPP: not TCP or the kernel lacks the field; -EBADF, -ENOTSOCK).
   * Synchronous: call it only with an fd the caller owns right now.
   */
  tcpBytesAcked(fd: number): number;
  /**
   * sendfile(2) with an explicit offset (the file position is not used): bytes sent, 0 at end of
   * file, or -errno (-EAGAIN when a non-blocking socket is full). Synchronous, on the calling thread.
   */
  sendfile(outFd: number, inFd: number, offset: number, count: number): number;
  /**
   * One non-blocking send(2) of data[offset, offset + length) with MSG_MORE (the kernel holds a
   * partial segment for the bytes that follow, e.g. a sendfile body): bytes sent or -errno.
   * Synchronous: call it only with an fd the caller owns right now.
   */
  sendMore(fd: number, data: ArrayBufferView, offset: number, length: number): number;
  /**
   * cachestat(2): how many pages of [offset, offset + length) are not in the page cache (0: a
   * sendfile of that range reads nothing from the disk), or -errno: -ENOSYS before Linux 6.5,
   * -EPERM when this process neither owns the file nor may write it. length >= 1. Synchronous.
   */
  uncachedPages(fd: number, offset: number, length: number): number;
}

export type LoadResult = { binding: NativeBinding; reason: null } | { binding: null; reason: string };

/** Load the addon. Never throws: returns the reason when it is absent or unusable. Cached. */
export declare function load(): LoadResult;
