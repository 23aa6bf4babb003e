import type * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import type { RingBackend } from '../backend.js';
import { ZcSendError, errnoError } from '../errors.js';
import type { RawOp, RawRing } from '../sender.js';
import { refreshIdleTimer } from '../sockets.js';
import { fileTruncated } from './file-io.js';
import type { Pipe } from './pipe-pool.js';
import { IOSQE_FIXED_FILE, IOSQE_IO_LINK, PAGE_SIZE, POLLOUT, SPLICE_F_MOVE, SPLICE_F_NONBLOCK } from './ring-flags.js';

const { EAGAIN, ECANCELED, EINVAL, EOPNOTSUPP, ENOSYS } = osConstants.errno;

/** A file -> pipe splice the kernel refuses for this file (e.g. no splice_read): copy can still serve. */
const FILE_REFUSALS = new Set([EINVAL, EOPNOTSUPP, ENOSYS]);

export interface TransferParams {
  raw: RawRing;
  socket: net.Socket;
  /** The registered-file slot holding the socket: every op that writes to it names the slot. */
  slot: number;
  pipe: Pipe;
  /** The file's fd (ours or the caller's; either way open until the transfer settles). */
  fileFd: number;
  path: string;
  start: number;
  end: number;
  /** file->pipe->socket pairs per linked chain. */
  pairsPerChain: number;
  /** Engine-wide counters this transfer adds to. */
  counters: SpliceCounters;
}

export interface SpliceCounters {
  /** Linked chains queued. */
  chains: number;
  /** Times the socket pushed back (short count or -EAGAIN) and a POLLOUT wait was queued. */
  socketWaits: number;
}

export interface TransferResult {
  /** Bytes of [start, end) the socket accepted. */
  sent: number;
  /**
   * Set when the kernel refused to splice this file and the socket has every byte before
   * `resumeAt` (the pipe is empty): the caller may serve [resumeAt, end) another way.
   */
  resumeAt: number | null;
  /** False when the pipe may hold bytes (a failed chain): it must be closed, not reused. */
  pipeEmpty: boolean;
}

type Step = 'fill' | 'poll' | 'drain';

/**
 * One file range sent as linked chains on the ring: [POLL_ADD(POLLOUT) ->] pipe->socket, then
 * pairs of file->pipe -> pipe->socket, each linked to the next. A short or failed op breaks the
 * chain (the kernel fails the linked rest with -ECANCELED), so the state is rebuilt from the
 * byte counts once all CQEs of a chain are in: bytes left in the pipe are drained first, after a
 * poll for writability when the socket pushed back (a splice into libuv's non-blocking socket
 * returns short counts and -EAGAIN instead of waiting). Settles only when no op of it is left in
 * the kernel, so the caller may then clear the slot, reuse or close the pipe, and close the file.
 */
export class SpliceTransfer {
  /** Next file offset to splice into the pipe. */
  private next: number;
  /** Bytes in the pipe, not yet in the socket. */
  private inPipe = 0;
  private sent = 0;
  /** The socket pushed back (short count or -EAGAIN): wait for POLLOUT before the next drain. */
  private socketFull = false;
  private readonly pending = new Set<number>();
  /**
   * An op of the current chain failed or came back short: the kernel fails the ops linked after
   * it with -ECANCELED. A -ECANCELED without that was a cancellation from outside (ours, or the
   * Sender being destroyed): the transfer stops rather than queue the same chain again.
   */
  private chainBroken = false;
  private error: ZcSendError | null = null;
  private resumeAt: number | null = null;
  private settled = false;
  private resolve!: (result: TransferResult) => void;
  private reject!: (err: ZcSendError) => void;

  constructor(private readonly p: TransferParams) {
    this.next = p.start;
  }

  /** Queues the first chain; settles once every byte was accepted or the transfer failed. */
  run(): Promise<TransferResult> {
    const done = new Promise<TransferResult>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.queueChain();
    return done;
  }

  /** Fails the transfer: cancels every op of the current chain; settles once their CQEs are in. */
  abort(err: ZcSendError): void {
    if (this.settled) return;
    this.error ??= err;
    const ring = this.p.raw.ring;
    let cancelled = 0;
    for (const userData of this.pending) if (ring.cancel(userData) >= 0) cancelled++;
    // Cancels are ours, not the Sender's: submit them now (their CQEs are tagged and ignored).
    if (cancelled > 0) ring.submit();
    this.maybeFinish();
  }

  private queueChain(): void {
    const { start, end, pipe, pairsPerChain } = this.p;
    const steps: Array<{ step: Step; length: number; offset: number }> = [];
    if (this.inPipe > 0) {
      if (this.socketFull) {
        steps.push({ step: 'poll', length: 0, offset: 0 });
        this.p.counters.socketWaits++;
      }
      steps.push({ step: 'drain', length: this.inPipe, offset: 0 });
    }
    // Fills only follow a full drain, so each goes into an empty pipe. A range that starts
    // inside a page takes one pipe slot more: keep it within the pipe's pages.
    let offset = this.next;
    for (let pairs = 0; pairs < pairsPerChain && offset < end; pairs++) {
      const length = Math.min(pipe.capacity - (offset % PAGE_SIZE), end - offset);
      steps.push({ step: 'fill', length, offset }, { step: 'drain', length, offset: 0 });
      offset += length;
    }
    if (steps.length === 0) {
      // Nothing left to send yet bytes missing: cannot happen while the counts add up.
      this.error ??= new ZcSendError('ZCSEND_ERR_PROTOCOL', `splice transfer stalled at ${start + this.sent} of [${start}, ${end})`);
      this.maybeFinish();
      return;
    }
    this.chainBroken = false;
    const ops = steps.map((s, i) => this.op(s.step, s.length, s.offset, i < steps.length - 1));
    this.p.counters.chains++;
    const rc = this.p.raw.queue(ops);
    if (rc < 0) {
      // Ops queued before the failure still run and complete; settle after them.
      this.error ??= errnoError('ZCSEND_ERR_SUBMIT_FAILED', rc, 'io_uring_enter', 'could not queue the splice chain');
      this.maybeFinish();
    }
  }

  private op(step: Step, length: number, offset: number, linked: boolean): RawOp {
    const { socket, slot, pipe, fileFd } = this.p;
    const link = linked ? IOSQE_IO_LINK : 0;
    let userData = 0;
    const prepare = (ring: RingBackend, ud: number): number => {
      let rc: number;
      if (step === 'fill') {
        // The file and the pipe are our own fds: they may be named raw even in a linked SQE.
        rc = ring.splice!(fileFd, offset, pipe.writeFd, -1, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK, link, ud);
      } else if (step === 'poll') {
        rc = ring.pollAdd!(slot, POLLOUT, IOSQE_FIXED_FILE | link, ud);
      } else {
        // The socket only ever by its slot (IOSQE_FIXED_FILE), never by libuv's fd number.
        rc = ring.splice!(pipe.readFd, -1, slot, -1, length, SPLICE_F_MOVE, IOSQE_FIXED_FILE | link, ud);
      }
      if (rc >= 0) {
        userData = ud;
        this.pending.add(ud);
      }
      return rc;
    };
    const onComplete = (res: number): void => {
      this.pending.delete(userData);
      if (res === -ECANCELED && !this.chainBroken) {
        this.error ??= new ZcSendError('ZCSEND_ERR_CANCELLED', 'the splice was cancelled', { errno: ECANCELED, syscall: 'splice' });
      }
      // A poll's result is a mask; a splice that moved fewer bytes than asked ends the link.
      if (step === 'poll' ? res < 0 : res !== length) this.chainBroken = true;
      if (step === 'fill') this.onFill(res, length);
      else if (step === 'poll') this.onPoll(res);
      else this.onDrain(res, length, socket);
      if (this.pending.size === 0) this.onChainDone();
    };
    return { prepare, onComplete };
  }

  private onFill(res: number, length: number): void {
    if (res > 0) {
      this.inPipe += res;
      this.next += res;
      return;
    }
    if (res === -ECANCELED) return; // the chain broke earlier, or we cancelled it
    if (res === 0) {
      this.error ??= fileTruncated(this.p.path, this.next);
    } else if (FILE_REFUSALS.has(-res) && this.inPipe === 0 && this.error === null) {
      this.resumeAt = this.next;
    } else {
      this.error ??= errnoError('ZCSEND_ERR_SEND_FAILED', res, 'splice', `splice of ${length} bytes from ${this.p.path} failed`);
    }
  }

  private onPoll(res: number): void {
    if (res >= 0 || res === -ECANCELED) return; // an error mask is reported by the splice that follows
    this.error ??= errnoError('ZCSEND_ERR_SEND_FAILED', res, 'io_uring_enter', 'waiting for the socket to take more bytes failed');
  }

  private onDrain(res: number, length: number, socket: net.Socket): void {
    if (res > 0) {
      this.inPipe -= res;
      this.sent += res;
      if (res < length) this.socketFull = true;
      else this.socketFull = false;
      refreshIdleTimer(socket);
      return;
    }
    if (res === -ECANCELED) return;
    if (res === -EAGAIN) {
      this.socketFull = true;
      return;
    }
    this.error ??=
      res === 0
        ? new ZcSendError('ZCSEND_ERR_SEND_FAILED', 'the socket accepted no bytes', { syscall: 'splice' })
        : errnoError('ZCSEND_ERR_SEND_FAILED', res, 'splice', 'splice to the socket failed');
  }

  private onChainDone(): void {
    if (this.error || this.resumeAt !== null || this.sent >= this.p.end - this.p.start) {
      this.maybeFinish();
      return;
    }
    this.queueChain();
  }

  private maybeFinish(): void {
    if (this.settled || this.pending.size > 0) return;
    const done = this.error !== null || this.resumeAt !== null || this.sent >= this.p.end - this.p.start;
    if (!done) return;
    this.settled = true;
    const pipeEmpty = this.inPipe === 0 && this.error === null;
    if (this.error) this.reject(this.error);
    else this.resolve({ sent: this.sent, resumeAt: this.resumeAt, pipeEmpty });
  }
}
