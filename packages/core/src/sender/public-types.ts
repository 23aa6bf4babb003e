import type * as net from 'node:net';
import type { RingBackend } from '../backend.js';
import type { ZcSendError } from '../errors.js';
import type { FallbackReason } from '../sockets.js';

export interface SendOptions {
  /** Override the Sender's threshold for this send. */
  threshold?: number;
  /**
   * Slot from registerBuffer() whose buffer `data` lies in: SEND_ZC then uses the registered
   * buffer (IORING_RECVSEND_FIXED_BUF: pages pinned once, not per send).
   */
  fixedBuffer?: number;
}

/** What happened to one `send()`, available once the kernel let go of its buffer. */
export interface SendReport {
  /** Body bytes the kernel (or libuv) accepted. */
  bytes: number;
  /** Ring ops this send used (0 on the copy path). */
  ops: number;
  zcOps: number;
  plainOps: number;
  /** SEND_ZC ops whose notification said the kernel copied the data. */
  copiedOps: number;
  path: 'io_uring' | 'copy';
  /** Why this send did not (entirely) use SEND_ZC, or null. */
  fallbackReason: FallbackReason | null;
  /** Set when the send failed; `sent` rejected with it. */
  error: ZcSendError | null;
}

export interface SendHandle {
  /** Resolves with the byte count once every byte was accepted: the stream may move on. */
  sent: Promise<number>;
  /** Resolves once the kernel holds no reference to the buffer: only now may it be reused. Never rejects. */
  released: Promise<SendReport>;
}

/** A libuv socket and the fd number an SQE names for it. */
export interface SocketFd {
  readonly socket: net.Socket | null;
  readonly fd: number;
}

/** A non-send ring op queued through ringOps(): `prepare` queues its SQE with the given user_data. */
export interface RawOp {
  prepare: (ring: RingBackend, userData: number) => number;
  onComplete: (res: number, flags: number) => void;
  /**
   * Set when the SQE names a libuv socket by its fd number (not a registered-file slot). Should
   * its submit fail and be retried after control went back to the event loop, the socket is
   * checked first: libuv may have closed the fd and handed the number to a new connection.
   */
  target?: SocketFd;
}

export interface RawRing {
  ring: RingBackend;
  /** Queue the ops in order (a linked chain stays within one submission) and submit. 0 or -errno. */
  queue(ops: RawOp[]): number;
  /**
   * Queue one unlinked op. Within a completion batch its submit waits for the batch's end (one
   * syscall for all), still before control returns to the event loop. 0 or -errno.
   */
  queueOne(op: RawOp): number;
  /**
   * Submit what is queued (a cancel, say): now, or at the end of the completion batch, through
   * the Sender's submit path, so a retry after a failed submit keeps its checks.
   */
  submit(): void;
}
