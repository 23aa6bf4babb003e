import type * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import { ZcSendError, errnoError } from '../errors.js';
import type { RawRing } from '../sender.js';
import { currentFd, refreshIdleTimer } from '../sockets.js';
import { fileTruncated } from './file-io.js';
import type { PageResidency } from './page-residency.js';
import type { SocketSlots } from './socket-slots.js';
import { socketClosed } from './socket-ready.js';
import type { FileFallbackReason } from './types.js';
import { WritableWait } from './writable-wait.js';

const { EAGAIN, EBUSY, ECANCELED, EINTR, EINVAL, ENOSYS, EOPNOTSUPP } = osConstants.errno;

/** sendfile refuses this file (no splice_read, or not a regular file): another engine can serve it. */
const FILE_REFUSALS = new Set([EINVAL, EOPNOTSUPP, ENOSYS]);

/** sendfile(outFd, inFd, offset, count): bytes, 0 at end of file, or -errno. */
export type SendfileSyscall = (outFd: number, inFd: number, offset: number, count: number) => number;

export interface SendfileCounters {
  /** sendfile(2) calls made (including those that returned -EAGAIN). */
  calls: number;
  /** Times the socket was full (-EAGAIN) and a POLLOUT wait was queued on the ring. */
  socketWaits: number;
  /** Times a response gave the event loop back after bytesPerTurn bytes. */
  yields: number;
}

export interface SendfileParams {
  syscall: SendfileSyscall;
  raw: RawRing;
  slots: SocketSlots;
  socket: net.Socket;
  fileFd: number;
  path: string;
  start: number;
  end: number;
  bytesPerTurn: number;
  /** Bytes already sent in this event-loop turn before the transfer starts (its first turn is shorter). */
  turnUsed?: number;
  counters: SendfileCounters;
  /**
   * Given when the range was chosen for sendfile because cachestat found it cached: each turn's
   * window past `verifiedUntil` is asked again before it is sent, since a long transfer outlives
   * the first answer.
   */
  residency?: { check: PageResidency; verifiedUntil: number };
}

/** All of [start, end) was sent, or [resumeAt, end) must go another way (the bytes before it were sent). */
export type SendfileResult = { resumeAt: null } | { resumeAt: number; reason: FileFallbackReason };

/**
 * One file range sent by synchronous sendfile(2) calls into libuv's non-blocking socket, as many
 * bytes as it takes, then a POLLOUT wait on the ring when it is full. Driven from callbacks, not
 * async steps: the next wait is queued inside the completion handler of the previous one, so the
 * Sender never sees its op table drained (and closes the ring) in the middle of a transfer that
 * is waiting. Settles only when no wait of it is left in the kernel, after giving back the slot.
 */
export class SendfileTransfer {
  private offset: number;
  /** With `residency`: bytes before this were found in the page cache. */
  private verifiedUntil: number;
  /** Bytes sent since the event loop last ran other work. */
  private turn = 0;
  private slot = -1;
  private wait: WritableWait | null = null;
  private yielding = false;
  private closed: ZcSendError | null = null;
  private settled = false;
  private resolve!: (result: SendfileResult) => void;
  private reject!: (err: ZcSendError) => void;

  constructor(private readonly p: SendfileParams) {
    this.offset = p.start;
    this.verifiedUntil = p.residency?.verifiedUntil ?? p.end;
    this.turn = Math.min(p.turnUsed ?? 0, p.bytesPerTurn);
  }

  get sent(): number {
    return this.offset - this.p.start;
  }

  run(): Promise<SendfileResult> {
    const done = new Promise<SendfileResult>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.pump();
    return done;
  }

  /**
   * The socket closed (libuv closing the fd cancels nothing: a pending wait would hold the
   * connection open through its slot). Cancels the wait; settles once its CQE is in.
   */
  abort(err: ZcSendError): void {
    if (this.settled) return;
    this.closed ??= err;
    if (this.wait) this.wait.cancel();
    else if (!this.yielding) this.fail(err);
  }

  /** Sends until done, the socket is full (then waits) or a turn is used up (then yields). */
  private pump(): void {
    const { syscall, socket, fileFd, end, bytesPerTurn, counters } = this.p;
    while (this.offset < end) {
      if (this.closed) return this.fail(this.closed);
      if (this.turn >= bytesPerTurn) return this.yieldTurn();
      if (this.offset >= this.verifiedUntil && !this.windowCached()) return this.finish({ resumeAt: this.offset, reason: 'sendfile-uncached' });
      // Checked and used in one synchronous step: the fd is this socket's for the call.
      const fd = currentFd(socket);
      if (fd < 0 || !socket.writable) return this.fail(socketClosed());
      const res = syscall(fd, fileFd, this.offset, Math.min(end - this.offset, bytesPerTurn - this.turn));
      counters.calls++;
      if (res > 0) {
        this.offset += res;
        this.turn += res;
        refreshIdleTimer(socket);
        continue;
      }
      if (res === 0) return this.fail(fileTruncated(this.p.path, this.offset));
      if (res === -EINTR) continue;
      if (res === -EAGAIN) return this.waitWritable(fd);
      if (FILE_REFUSALS.has(-res)) return this.finish({ resumeAt: this.offset, reason: 'sendfile-refused' });
      return this.fail(errnoError('ZCSEND_ERR_SEND_FAILED', res, 'sendfile', 'sendfile to the socket failed'));
    }
    this.finish({ resumeAt: null });
  }

  /** Whether the next turn's bytes are in the page cache (unknown counts as yes: the first answer stands). */
  private windowCached(): boolean {
    const until = Math.min(this.p.end, this.offset + this.p.bytesPerTurn);
    if (this.p.residency!.check.resident(this.p.fileFd, this.offset, until) === false) return false;
    this.verifiedUntil = until;
    return true;
  }

  /** A fast reader of a large file must not hold the event loop for the whole file. */
  private yieldTurn(): void {
    this.p.counters.yields++;
    this.turn = 0;
    this.yielding = true;
    setImmediate(() => {
      this.yielding = false;
      this.pump();
    });
  }

  /** `fd` was the socket's fd a moment ago, in this same synchronous step: it may fill the slot. */
  private waitWritable(fd: number): void {
    this.turn = 0;
    if (this.slot < 0) {
      const slot = this.p.slots.take(fd);
      if (slot < 0) return this.finish({ resumeAt: this.offset, reason: slot === -EBUSY ? 'sendfile-busy' : 'sendfile-unavailable' });
      this.slot = slot;
    }
    this.p.counters.socketWaits++;
    const wait = WritableWait.start(this.p.raw, this.slot, (res) => this.onWritable(res));
    if (typeof wait === 'number') {
      // The Sender closed its ring under the transfer: nothing left to wait with.
      return this.fail(errnoError('ZCSEND_ERR_SUBMIT_FAILED', wait, 'io_uring_enter', 'could not queue a wait for the socket'));
    }
    this.wait = wait;
  }

  private onWritable(res: number): void {
    this.wait = null;
    if (this.closed) return this.fail(this.closed);
    if (res === -ECANCELED) {
      return this.fail(new ZcSendError('ZCSEND_ERR_CANCELLED', 'the wait for the socket was cancelled', { errno: ECANCELED, syscall: 'io_uring_enter' }));
    }
    if (res < 0) return this.fail(errnoError('ZCSEND_ERR_SEND_FAILED', res, 'io_uring_enter', 'waiting for the socket to take more bytes failed'));
    // An error mask (POLLERR, POLLHUP) is reported by the sendfile that follows.
    this.pump();
  }

  private fail(err: ZcSendError): void {
    if (this.settle()) this.reject(err);
  }

  private finish(result: SendfileResult): void {
    if (this.settle()) this.resolve(result);
  }

  /** Only ever called with no wait in the kernel: the slot may let the socket go. */
  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (this.slot >= 0) this.p.slots.give(this.slot);
    this.slot = -1;
    return true;
  }
}
