import * as net from 'node:net';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { openNativeRing, type RingBackend } from './backend.js';
import {
  CANCEL_TAG_HI,
  IORING_CQE_F_MORE,
  IORING_CQE_F_NOTIF,
  IORING_NOTIF_USAGE_ZC_COPIED,
  IORING_SEND_ZC_REPORT_USAGE,
  MAX_USER_DATA,
  MSG_WAITALL,
} from './constants.js';
import { copiedChannel, fallbackChannel, violationChannel } from './diagnostics.js';
import { ZcSendError, errnoError, type ZcSendErrorCode } from './errors.js';
import { resolveSenderOptions, type ResolvedSenderOptions, type SenderOptions } from './options.js';
import { PeerVerdicts } from './peer-verdicts.js';
import {
  currentFd,
  dgramFd,
  isLoopbackAddress,
  libuvIdle,
  refreshIdleTimer,
  socketEligibility,
  type FallbackReason,
} from './sockets.js';
import { emptyStats, type SenderStats } from './stats.js';

const { ECANCELED, ENOMEM, EOPNOTSUPP, EAGAIN, EINTR, EBUSY } = osConstants.errno;
/** Transient submit failures retried this many times (1 ms apart) before the ring counts as failed. */
const MAX_SUBMIT_RETRIES = 1000;
const EMPTY = Buffer.alloc(0);
/** Registered-buffer table size, created sparse on first registerBuffer(). */
const BUFFER_SLOTS = 1024;

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

interface Job {
  target: Target | null;
  data: Uint8Array;
  end: number;
  /** Next byte to hand to the kernel. */
  next: number;
  /** Bytes the kernel accepted. */
  acked: number;
  liveOps: number;
  forcePlain: boolean;
  /** Registered-buffer slot `data` lies in, or -1. */
  fixedSlot: number;
  settled: boolean;
  failed: boolean;
  report: SendReport;
  resolveSent: (bytes: number) => void;
  rejectSent: (err: ZcSendError) => void;
  resolveReleased: (report: SendReport) => void;
}

/** A non-send ring op queued through ringOps(): `prepare` queues its SQE with the given user_data. */
export interface RawOp {
  prepare: (ring: RingBackend, userData: number) => number;
  onComplete: (res: number, flags: number) => void;
}

export interface RawRing {
  ring: RingBackend;
  /** Queue the ops in order (a linked chain stays within one submission) and submit. 0 or -errno. */
  queue(ops: RawOp[]): number;
}

interface Op {
  id: number;
  job: Job;
  target: Target | null;
  zc: boolean;
  offset: number;
  length: number;
  gotFirst: boolean;
  awaitingNotif: boolean;
  accepted: number;
}

/** Per-socket state: a FIFO of sends and at most one op in flight, so bytes keep their order. */
interface Target {
  socket: net.Socket | null;
  fd: number;
  peer: string | undefined;
  queue: Job[];
  active: Op | null;
  waitingLibuv: boolean;
  /** Set once this socket should use plain sends, with the reason. */
  plainReason: FallbackReason | null;
  liveOps: number;
  closed: boolean;
}

type SenderState = 'open' | 'closing' | 'closed';

export class Sender {
  /** 'io_uring' when a ring is open, else 'copy'. */
  backend: 'io_uring' | 'copy';
  /** Why the copy backend is in use, or null. */
  fallbackReason: string | null;
  /** Ring setup description (flags), or null on the copy backend. */
  readonly ringDescription: string | null;

  private readonly options: ResolvedSenderOptions;
  /** Null on the copy backend, and after the ring failed for good (see failRing). */
  private ring: RingBackend | null;
  /** Ops queued on the ring since its last successful submit. */
  private unsubmitted: Op[] = [];
  private submitRetry: NodeJS.Timeout | null = null;
  private submitRetries = 0;
  private readonly zcFlags: number;
  private readonly counters: SenderStats;
  private readonly ops = new Map<number, Op>();
  /** Ring ops that are not sends (splice, poll) queued by the file engines through ringOps(). */
  private readonly rawOps = new Map<number, RawOp>();
  private readonly socketTargets = new WeakMap<net.Socket, Target>();
  private readonly fdTargets = new Map<number, Target>();
  private readonly busyTargets = new Set<Target>();
  private readonly peers = new PeerVerdicts();
  /** Registered buffers by slot (null: free); the table is created on first use. */
  private registered: Array<Uint8Array | null> | null = null;
  private readonly freeSlots: number[] = [];
  private nextId = 1;
  private unreleasedJobs = 0;
  private inBatch = false;
  private submitPending = false;
  private lastOverflow = 0;
  private state: SenderState = 'open';
  private closePromise: Promise<void> | null = null;
  private drainWaiters: Array<() => void> = [];

  constructor(options: SenderOptions = {}) {
    this.options = resolveSenderOptions(options);
    let ring: RingBackend | null = null;
    let reason: string | null = null;
    if (this.options.backend === 'copy') {
      reason = process.env.ZCSEND_DISABLE === '1' ? 'disabled by ZCSEND_DISABLE=1' : "disabled by option backend: 'copy'";
    } else if (this.options.ring) {
      try {
        ring = this.options.ring(this.onCompletions);
      } catch (err) {
        reason = `ring backend failed to open: ${(err as Error).message}`;
      }
    } else {
      const opened = openNativeRing(this.onCompletions, this.options.entries);
      ring = opened.ring;
      reason = opened.reason;
    }
    if (!ring && this.options.backend === 'io_uring') {
      throw new ZcSendError('ZCSEND_ERR_URING_UNAVAILABLE', `io_uring is required but unavailable: ${reason}`);
    }
    this.ring = ring;
    this.backend = ring ? 'io_uring' : 'copy';
    this.fallbackReason = ring ? null : reason;
    this.ringDescription = ring ? ring.description : null;
    this.zcFlags = ring?.features.reportUsage ? IORING_SEND_ZC_REPORT_USAGE : 0;
    this.counters = emptyStats(this.backend);
    if (!ring) fallbackChannel.publish({ reason: 'unavailable', detail: reason });
  }

  /** False once close() or destroy() was called. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Whether adaptive plain sends are on (see SenderOptions.adaptive). */
  get adaptive(): boolean {
    return this.options.adaptive;
  }

  get threshold(): number {
    return this.options.threshold;
  }

  get chunkSize(): number {
    return this.options.chunkSize;
  }

  /**
   * Send `data` on a TCP socket (a net.Socket, or a raw connected fd the caller keeps open).
   * Sends on one socket go out in call order. The caller must not write to the socket itself
   * until `sent` resolves, nor modify `data` until `released` resolves.
   */
  send(socket: net.Socket | number, data: Uint8Array, opts: SendOptions = {}): SendHandle {
    assertBytes(data);
    const threshold = opts.threshold ?? this.options.threshold;
    const fixedSlot = opts.fixedBuffer === undefined ? -1 : this.checkFixed(opts.fixedBuffer, data);
    const { job, handle } = this.newJob(data);
    job.fixedSlot = fixedSlot;
    if (this.state !== 'open') {
      this.failJob(job, new ZcSendError('ZCSEND_ERR_SENDER_CLOSED', 'the sender is closed'));
      return handle;
    }

    if (typeof socket === 'number') {
      if (!Number.isInteger(socket) || socket <= 0) {
        throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', `socket must be a net.Socket or a positive fd, got ${socket}`);
      }
      if (!this.ring) {
        this.sendFdByCopy(job, socket);
        return handle;
      }
      this.enqueue(job, this.fdTarget(socket), data.byteLength < threshold);
      return handle;
    }

    if (!(socket instanceof net.Socket)) {
      throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', 'socket must be a net.Socket or a positive fd');
    }
    if (socket.destroyed || !socket.writable) {
      this.failJob(job, new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket is closed or no longer writable'));
      return handle;
    }
    const existing = this.socketTargets.get(socket);
    if (existing && existing.queue.length > 0) {
      // Earlier sends on this socket are still in the ring: this one queues behind them to keep order.
      this.enqueue(job, existing, data.byteLength < threshold);
      return handle;
    }
    if (!this.ring) {
      this.sendSocketByCopy(job, socket, this.copyReason());
      return handle;
    }
    const eligibility = socketEligibility(socket);
    if (eligibility.reason) {
      this.sendSocketByCopy(job, socket, eligibility.reason);
      return handle;
    }
    if (data.byteLength < threshold) {
      this.sendSocketByCopy(job, socket, 'below-threshold');
      return handle;
    }
    this.enqueue(job, existing ?? this.socketTarget(socket, eligibility.fd), false);
    return handle;
  }

  /** Send one datagram on a UDP socket (dgram.Socket or raw fd) to `port`/`address`. */
  sendTo(socket: dgram.Socket | number, data: Uint8Array, port: number, address: string): SendHandle {
    assertBytes(data);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', `port must be an integer from 1 to 65535, got ${port}`);
    }
    if (typeof address !== 'string' || net.isIP(address) === 0) {
      throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', `address must be an IPv4 or IPv6 literal, got ${String(address)}`);
    }
    const isDgram = socket instanceof dgram.Socket;
    if (!isDgram && (typeof socket !== 'number' || !Number.isInteger(socket) || socket <= 0)) {
      throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', 'socket must be a dgram.Socket or a positive fd');
    }
    const { job, handle } = this.newJob(data);
    if (this.state !== 'open') {
      this.failJob(job, new ZcSendError('ZCSEND_ERR_SENDER_CLOSED', 'the sender is closed'));
      return handle;
    }
    const fd = isDgram ? dgramFd(socket) : socket;
    if (!this.ring || fd < 0) {
      if (!isDgram) {
        this.failJob(job, new ZcSendError('ZCSEND_ERR_URING_UNAVAILABLE', `raw fd datagrams need io_uring: ${this.fallbackReason}`));
        return handle;
      }
      this.countFallback(job, this.ring ? 'no-fd' : this.copyReason());
      this.counters.copyWrites++;
      socket.send(data, port, address, (err) => this.finishCopy(job, err));
      return handle;
    }
    const op = this.newOp(job, null, true, 0, data.byteLength);
    const rc = this.ring.sendtoZc(fd, data, 0, data.byteLength, 0, this.zcFlags, port, address, op.id);
    if (rc < 0) {
      this.dropUnsubmittedOp(op);
      this.failJob(job, errnoError('ZCSEND_ERR_SUBMIT_FAILED', rc, 'io_uring_enter', 'could not queue the datagram'));
      return handle;
    }
    this.markQueued(op);
    job.next = job.end;
    return handle;
  }

  /**
   * Why a large send on this socket would not use SEND_ZC now, or null when it would: no ring,
   * an ineligible socket, or the adaptive verdict (loopback peer, peer or socket seen copying).
   * Lets adapters leave such bodies to their framework's own write path.
   */
  plainReasonFor(socket: net.Socket): FallbackReason | null {
    if (!this.ring) return this.copyReason();
    const eligibility = socketEligibility(socket);
    if (eligibility.reason) return eligibility.reason;
    const target = this.socketTargets.get(socket);
    if (target) return target.plainReason;
    if (!this.options.adaptive) return null;
    if (isLoopbackAddress(socket.remoteAddress)) return 'loopback';
    return this.peers.isCopied(socket.remoteAddress) ? 'copied' : null;
  }

  /**
   * Whether sends on this socket are still queued or referenced by the kernel. A socket that
   * holds zero-copy ops after its response finished has a peer that is not reading: closing it
   * with a FIN leaves the buffers pinned in the orphaned kernel socket until the peer reads, so
   * close such a socket with a reset (`socket.resetAndDestroy()`) to release them at once.
   */
  holds(socket: net.Socket | number): boolean {
    const target = typeof socket === 'number' ? this.fdTargets.get(socket) : this.socketTargets.get(socket);
    return target !== undefined && (target.liveOps > 0 || target.queue.length > 0);
  }

  /**
   * Register `buf` with the ring (pinned once) and return its slot for `send(..., { fixedBuffer })`,
   * or -1 when that is not possible here (copy backend, no fixed buffers, RLIMIT_MEMLOCK): the
   * caller then sends it as an ordinary buffer. Only anonymous memory qualifies (a
   * Buffer.allocUnsafeSlow allocation is; a file mapping is not).
   */
  registerBuffer(buf: Uint8Array): number {
    assertBytes(buf);
    const ring = this.ring;
    if (!ring?.features.fixedBuffers || !ring.registerBufferSlots || !ring.updateBuffer || this.state !== 'open') return -1;
    if (!this.registered) {
      if (ring.registerBufferSlots(BUFFER_SLOTS) < 0) return -1;
      this.registered = new Array<Uint8Array | null>(BUFFER_SLOTS).fill(null);
      for (let i = BUFFER_SLOTS - 1; i >= 0; i--) this.freeSlots.push(i);
    }
    const slot = this.freeSlots.pop();
    if (slot === undefined) return -1;
    const rc = ring.updateBuffer(slot, buf);
    if (rc < 0) {
      this.freeSlots.push(slot);
      this.countFallback(null, rc === -ENOMEM ? 'memlock' : 'unsupported');
      return -1;
    }
    this.registered[slot] = buf;
    return slot;
  }

  /**
   * Give the slot back. The kernel keeps a replaced buffer until its last op lets go, and every
   * op keeps its own reference to the memory, so this is safe with sends still in flight.
   */
  unregisterBuffer(slot: number): void {
    if (!this.registered || this.registered[slot] === undefined || this.registered[slot] === null) return;
    this.registered[slot] = null;
    if (this.state !== 'closed') this.ring?.updateBuffer?.(slot, null);
    this.freeSlots.push(slot);
  }

  private checkFixed(slot: number, data: Uint8Array): number {
    const base = Number.isInteger(slot) ? this.registered?.[slot] : null;
    if (!base) throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', `fixedBuffer ${slot} is not a registered buffer slot`);
    const start = data.byteOffset - base.byteOffset;
    if (data.buffer !== base.buffer || start < 0 || start + data.byteLength > base.byteLength) {
      throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', `data does not lie inside the buffer registered at slot ${slot}`);
    }
    return slot;
  }

  /** Cancel everything queued or in flight on this socket; its pending sends reject with `err`. */
  cancel(socket: net.Socket | number, err?: ZcSendError): void {
    const target = typeof socket === 'number' ? this.fdTargets.get(socket) : this.socketTargets.get(socket);
    if (target) this.failTarget(target, err ?? new ZcSendError('ZCSEND_ERR_CANCELLED', 'the send was cancelled'), false);
  }

  stats(): SenderStats {
    this.counters.inFlightOps = this.ops.size + this.rawOps.size;
    this.counters.cqOverflows = this.ring?.overflow ?? 0;
    return { ...this.counters, fallbacks: { ...this.counters.fallbacks } };
  }

  /** Stop taking sends, let queued ones finish, wait for every notification, then close the ring. */
  close(): Promise<void> {
    if (!this.closePromise) {
      if (this.state === 'open') this.state = 'closing';
      this.closePromise = this.whenDrained().then(() => {
        this.state = 'closed';
        this.ring?.close();
      });
    }
    return this.closePromise;
  }

  /** Reject queued sends, cancel ops in flight, then drain like close(). */
  destroy(err?: Error): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    const reason =
      err instanceof ZcSendError ? err : new ZcSendError('ZCSEND_ERR_SENDER_CLOSED', 'the sender was destroyed', { cause: err });
    for (const target of [...this.busyTargets]) this.failTarget(target, reason, false);
    // File-engine chains (splice, poll) may wait on a stalled peer forever: cancel them too. Their
    // owners see -ECANCELED and settle; close() then waits for the last CQE.
    if (this.ring && this.rawOps.size > 0) {
      for (const id of this.rawOps.keys()) this.ring.cancel(id);
      this.requestSubmit();
    }
    return this.close();
  }

  /** Resolves when nothing is queued or in flight (without closing). */
  whenDrained(): Promise<void> {
    if (this.isDrained()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  // ---- jobs --------------------------------------------------------------------------------

  private newJob(data: Uint8Array): { job: Job; handle: SendHandle } {
    let resolveSent!: (n: number) => void;
    let rejectSent!: (e: ZcSendError) => void;
    let resolveReleased!: (r: SendReport) => void;
    const sent = new Promise<number>((resolve, reject) => {
      resolveSent = resolve;
      rejectSent = reject;
    });
    // A caller that only awaits `released` must not crash the process on a failed send.
    sent.catch(() => {});
    const released = new Promise<SendReport>((resolve) => (resolveReleased = resolve));
    const job: Job = {
      target: null,
      data,
      end: data.byteLength,
      next: 0,
      acked: 0,
      liveOps: 0,
      forcePlain: false,
      fixedSlot: -1,
      settled: false,
      failed: false,
      report: { bytes: 0, ops: 0, zcOps: 0, plainOps: 0, copiedOps: 0, path: 'io_uring', fallbackReason: null, error: null },
      resolveSent,
      rejectSent,
      resolveReleased,
    };
    this.unreleasedJobs++;
    return { job, handle: { sent, released } };
  }

  private settleJob(job: Job): void {
    if (job.settled || job.failed) return;
    job.settled = true;
    job.report.bytes = job.acked;
    job.resolveSent(job.acked);
    this.maybeReleaseJob(job);
  }

  private failJob(job: Job, err: ZcSendError): void {
    if (job.settled || job.failed) return;
    job.failed = true;
    job.report.bytes = job.acked;
    job.report.error = err;
    job.rejectSent(err);
    this.maybeReleaseJob(job);
  }

  private maybeReleaseJob(job: Job): void {
    if (job.liveOps > 0 || !(job.settled || job.failed)) return;
    job.resolveReleased(job.report);
    this.unreleasedJobs--;
    this.checkDrained();
  }

  private countFallback(job: Job | null, reason: FallbackReason): void {
    if (job) {
      if (job.report.fallbackReason) return;
      job.report.fallbackReason = reason;
    }
    this.counters.fallbacks[reason] = (this.counters.fallbacks[reason] ?? 0) + 1;
  }

  // ---- the copy path -----------------------------------------------------------------------

  /** Why a send took the copy path when there is no ring: asked for, or not possible. */
  private copyReason(): FallbackReason {
    return this.options.backend === 'copy' ? 'disabled' : 'unavailable';
  }

  private sendSocketByCopy(job: Job, socket: net.Socket, reason: FallbackReason): void {
    job.report.path = 'copy';
    this.countFallback(job, reason);
    this.counters.copyWrites++;
    // libuv writes straight from `data` and holds it until the callback: sent and released coincide.
    socket.write(job.data, (err) => {
      // Node 20 calls back without an error when the socket was destroyed mid-write (peer reset or
      // local destroy): the bytes did not all go out, so a destroyed socket counts as a failure.
      if (!err && socket.destroyed) {
        const cause = socket.errored;
        if (cause) return this.finishCopy(job, cause);
        return this.failJob(job, new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket closed before the send finished'));
      }
      this.finishCopy(job, err ?? undefined);
    });
  }

  private sendFdByCopy(job: Job, fd: number): void {
    job.report.path = 'copy';
    this.countFallback(job, this.copyReason());
    this.counters.copyWrites++;
    const writeFrom = (offset: number): void => {
      fs.write(fd, job.data, offset, job.end - offset, null, (err, written) => {
        if (err && (err as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(() => writeFrom(offset), 1);
          return;
        }
        if (err) return this.finishCopy(job, err);
        job.acked += written;
        this.counters.bytesSent += written;
        this.counters.bytesPlain += written;
        if (job.acked < job.end) writeFrom(offset + written);
        else this.finishCopy(job, undefined, true);
      });
    };
    writeFrom(0);
  }

  private finishCopy(job: Job, err: Error | null | undefined, counted = false): void {
    if (err) {
      const errno = (err as NodeJS.ErrnoException).errno;
      this.failJob(
        job,
        new ZcSendError('ZCSEND_ERR_SEND_FAILED', `write failed: ${err.message}`, {
          cause: err,
          errno: errno === undefined ? undefined : Math.abs(errno),
          syscall: (err as NodeJS.ErrnoException).syscall ?? 'write',
        }),
      );
      return;
    }
    if (!counted) {
      job.acked = job.end;
      this.counters.bytesSent += job.end;
      this.counters.bytesPlain += job.end;
    }
    this.settleJob(job);
  }

  // ---- targets and the ring path -----------------------------------------------------------

  private socketTarget(socket: net.Socket, fd: number): Target {
    const target = this.newTarget(socket, fd, socket.remoteAddress);
    this.socketTargets.set(socket, target);
    // Close does not cancel: an op in flight keeps the kernel socket alive after libuv closes the fd.
    socket.once('close', () => {
      if (this.socketTargets.get(socket) === target) {
        this.failTarget(target, new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket closed before the send finished'), false);
        target.closed = true;
      }
    });
    if (this.options.adaptive) {
      if (isLoopbackAddress(target.peer)) target.plainReason = 'loopback';
      else if (this.peers.isCopied(target.peer)) target.plainReason = 'copied';
    }
    return target;
  }

  private fdTarget(fd: number): Target {
    let target = this.fdTargets.get(fd);
    if (!target) {
      target = this.newTarget(null, fd, undefined);
      this.fdTargets.set(fd, target);
    }
    return target;
  }

  private newTarget(socket: net.Socket | null, fd: number, peer: string | undefined): Target {
    return { socket, fd, peer, queue: [], active: null, waitingLibuv: false, plainReason: null, liveOps: 0, closed: false };
  }

  private enqueue(job: Job, target: Target, forcePlain: boolean): void {
    if (target.closed) {
      this.failJob(job, new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket is closed'));
      return;
    }
    job.target = target;
    job.forcePlain = forcePlain;
    if (forcePlain) this.countFallback(job, 'below-threshold');
    else if (target.plainReason) this.countFallback(job, target.plainReason);
    target.queue.push(job);
    this.busyTargets.add(target);
    if (target.queue.length === 1) this.kick(target);
  }

  /** Submit the next chunk of the head job when the socket has nothing in flight. */
  private kick(target: Target): void {
    if (target.active || target.waitingLibuv) return;
    const job = target.queue[0];
    if (!job) {
      this.maybeForgetTarget(target);
      return;
    }
    const ring = this.ring;
    if (!ring) return;
    const socket = target.socket;
    if (socket) {
      // Check liveness right before naming the fd: libuv may have closed it and the number may be reused.
      if (currentFd(socket) !== target.fd || !socket.writable) {
        this.failTarget(target, new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket closed before the send finished'), false);
        return;
      }
      if (job.next === 0 && !libuvIdle(socket)) {
        // Bytes libuv still holds must reach the wire before ours: wait on a write callback ('drain' may never fire).
        target.waitingLibuv = true;
        socket.write(EMPTY, () => {
          target.waitingLibuv = false;
          this.checkIdleRef();
          this.kick(target);
        });
        return;
      }
    }
    const zc = !job.forcePlain && target.plainReason === null;
    const length = Math.min(this.options.chunkSize, job.end - job.next);
    const op = this.newOp(job, target, zc, job.next, length);
    const base = zc && job.fixedSlot >= 0 ? this.registered?.[job.fixedSlot] : null;
    let rc: number;
    if (base && ring.sendZcFixed) {
      const offsetInBase = job.data.byteOffset - base.byteOffset + op.offset;
      rc = ring.sendZcFixed(target.fd, job.fixedSlot, base, offsetInBase, length, MSG_WAITALL, this.zcFlags, op.id);
      if (rc >= 0) this.counters.fixedOpsSubmitted++;
    } else if (zc) {
      rc = ring.sendZc(target.fd, job.data, op.offset, length, MSG_WAITALL, this.zcFlags, op.id);
    } else {
      rc = ring.send(target.fd, job.data, op.offset, length, MSG_WAITALL, op.id);
    }
    if (rc < 0) {
      this.dropUnsubmittedOp(op);
      this.failTarget(target, errnoError('ZCSEND_ERR_SUBMIT_FAILED', rc, 'io_uring_enter', 'could not queue the send'), true);
      return;
    }
    this.markQueued(op);
    this.unsubmitted.push(op);
    job.next += length;
    target.active = op;
    this.requestSubmit();
  }

  private newOp(job: Job, target: Target | null, zc: boolean, offset: number, length: number): Op {
    const id = this.allocateId();
    const op: Op = { id, job, target, zc, offset, length, gotFirst: false, awaitingNotif: false, accepted: 0 };
    this.ops.set(id, op);
    if (this.ops.size + this.rawOps.size === 1) this.ring?.ref();
    job.liveOps++;
    if (target) target.liveOps++;
    this.counters.pinnedBytes += length;
    return op;
  }

  /** The ring queued the op's SQE: from now on it counts as submitted. */
  private markQueued(op: Op): void {
    const report = op.job.report;
    report.ops++;
    if (op.zc) {
      report.zcOps++;
      this.counters.zcOpsSubmitted++;
    } else {
      report.plainOps++;
    }
    this.counters.opsSubmitted++;
  }

  /** Forget an op whose SQE the ring refused to queue: nothing reached the kernel. */
  private dropUnsubmittedOp(op: Op): void {
    op.gotFirst = true;
    this.forgetOp(op);
  }

  private allocateId(): number {
    // ids wrap within 32 bits; skip any still owned by a live op.
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= MAX_USER_DATA ? 1 : id + 1;
      if (!this.ops.has(id) && !this.rawOps.has(id)) return id;
    }
  }

  private requestSubmit(): void {
    if (this.inBatch) {
      this.submitPending = true;
      return;
    }
    this.submitNow();
  }

  private submitNow(): void {
    this.submitPending = false;
    const ring = this.ring;
    if (!ring) return;
    // SQEs that name libuv fds must reach the kernel before control returns to the event loop.
    let rc = ring.submit();
    for (let attempt = 0; rc < 0 && (rc === -EAGAIN || rc === -EINTR) && attempt < 3; attempt++) rc = ring.submit();
    if (rc >= 0) {
      this.unsubmitted.length = 0;
      this.submitRetries = 0;
      return;
    }
    this.counters.submitErrors++;
    if ((rc === -EAGAIN || rc === -EINTR || rc === -EBUSY) && this.submitRetries < MAX_SUBMIT_RETRIES) {
      // The kernel is short of room (CQ overflow backlog, memory): try again shortly.
      this.submitRetries++;
      this.submitRetry ??= setTimeout(() => {
        this.submitRetry = null;
        this.retrySubmit();
      }, 1);
      return;
    }
    this.failRing(errnoError('ZCSEND_ERR_SUBMIT_FAILED', rc, 'io_uring_enter', 'the ring stopped accepting submissions'));
  }

  /**
   * A retry runs after control went back to the event loop, where libuv may have closed a socket
   * and handed its fd number to a new connection: an SQE still naming the old number must never
   * reach the kernel then, so such a ring is given up (closing it discards unsubmitted SQEs).
   */
  private retrySubmit(): void {
    const reused = this.unsubmitted.some((op) => op.target?.socket && currentFd(op.target.socket) !== op.target.fd);
    if (reused) {
      this.failRing(new ZcSendError('ZCSEND_ERR_SUBMIT_FAILED', 'a socket closed while its send waited for the ring to accept it', { syscall: 'io_uring_enter' }));
      return;
    }
    this.submitNow();
  }

  /**
   * The ring cannot be used any more: close it (which discards what it never submitted), fail
   * every send it still owned, let the file engines' ops settle, and carry on with the copy backend.
   */
  private failRing(err: ZcSendError): void {
    const ring = this.ring;
    if (!ring) return;
    this.ring = null;
    if (this.submitRetry) clearTimeout(this.submitRetry);
    this.submitRetry = null;
    this.unsubmitted.length = 0;
    ring.close();
    this.backend = 'copy';
    this.fallbackReason = `io_uring failed: ${err.message}`;
    fallbackChannel.publish({ reason: 'unavailable', detail: this.fallbackReason });
    for (const target of [...this.busyTargets]) {
      target.active = null;
      this.failTarget(target, err, true);
    }
    for (const op of [...this.ops.values()]) {
      this.failJob(op.job, err);
      if (op.awaitingNotif) this.counters.pendingNotifications--;
      this.releaseOp(op);
    }
    for (const [id, raw] of [...this.rawOps]) {
      this.rawOps.delete(id);
      try {
        raw.onComplete(-ECANCELED, 0);
      } catch (handlerErr) {
        violationChannel.publish({ kind: 'raw-handler-error', error: handlerErr });
      }
    }
    this.checkIdleRef();
  }

  private readonly onCompletions = (cqes: Int32Array, count: number): void => {
    this.inBatch = true;
    try {
      for (let i = 0; i < count; i++) {
        const base = i * 4;
        this.onCqe(cqes[base]! >>> 0, cqes[base + 1]! >>> 0, cqes[base + 2]!, cqes[base + 3]! >>> 0);
      }
    } finally {
      this.inBatch = false;
      if (this.submitPending) this.submitNow();
      const overflow = this.ring?.overflow ?? 0;
      if (overflow !== this.lastOverflow) {
        this.lastOverflow = overflow;
        violationChannel.publish({ kind: 'cq-overflow', overflow });
      }
    }
  };

  private onCqe(userData: number, userDataHi: number, res: number, flags: number): void {
    if (userDataHi === CANCEL_TAG_HI) return; // our own ASYNC_CANCEL completing: nothing owns it
    const op = userDataHi === 0 ? this.ops.get(userData) : undefined;
    if (!op) {
      const raw = userDataHi === 0 ? this.rawOps.get(userData) : undefined;
      if (raw) return this.onRawCqe(userData, raw, res, flags);
      return this.violation('unknown-user-data', userData, res, flags);
    }
    if (flags & IORING_CQE_F_NOTIF) {
      if (!op.awaitingNotif) return this.violation('notification-without-more', userData, res, flags);
      return this.onNotification(op, res);
    }
    if (op.gotFirst) return this.violation('duplicate-first-cqe', userData, res, flags);
    try {
      this.onFirstCqe(op, res, flags);
    } catch (err) {
      // A bug here must not take the process down with buffers in the kernel: count it, fail the send.
      this.violation('handler-error', userData, res, flags);
      this.failJob(op.job, new ZcSendError('ZCSEND_ERR_PROTOCOL', `completion handling failed: ${(err as Error).message}`, { cause: err }));
    }
  }

  private onRawCqe(userData: number, raw: RawOp, res: number, flags: number): void {
    const last = !(flags & IORING_CQE_F_MORE);
    if (last) this.rawOps.delete(userData);
    try {
      raw.onComplete(res, flags);
    } catch (err) {
      this.violation('handler-error', userData, res, flags);
      violationChannel.publish({ kind: 'raw-handler-error', error: err });
    }
    // Only after the handler: it may queue the next ops of the same transfer, and close() must
    // not see a drained table (and close the ring) in between.
    if (last) this.checkIdleRef();
  }

  /**
   * The ring, for ops that are not sends (the file engines' splice chains, polls): they share
   * this thread's ring and op table, so completions route here and close() waits for them.
   * Null on the copy backend.
   */
  ringOps(): RawRing | null {
    const ring = this.ring;
    if (!ring || this.state === 'closed') return null;
    return {
      ring,
      queue: (specs) => {
        if (this.state === 'closed') return -77; // EBADFD
        // A linked chain must reach the kernel in one submission: flush what is pending first so
        // the SQ has room for the whole chain.
        if (this.submitPending) this.submitNow();
        const ids: number[] = [];
        for (const spec of specs) {
          const id = this.allocateId();
          const rc = spec.prepare(ring, id);
          if (rc < 0) {
            // Earlier SQEs of the chain are queued and will run; their callbacks still come.
            if (ids.length > 0) this.requestSubmit();
            return rc;
          }
          this.rawOps.set(id, spec);
          ids.push(id);
          if (this.ops.size + this.rawOps.size === 1) ring.ref();
        }
        this.requestSubmit();
        return 0;
      },
    };
  }

  private violation(kind: string, userData: number, res: number, flags: number): void {
    this.counters.violations++;
    violationChannel.publish({ kind, userData, res, flags });
  }

  private onFirstCqe(op: Op, res: number, flags: number): void {
    op.gotFirst = true;
    this.counters.opsSent++;
    const { job, target } = op;
    if (target && target.active === op) target.active = null;
    // Decide from F_MORE, never from res: errors usually carry a notification too.
    if (flags & IORING_CQE_F_MORE) {
      op.awaitingNotif = true;
      this.counters.pendingNotifications++;
    }

    if (res < 0) {
      this.counters.opsFailed++;
      const errno = -res;
      if (errno === ECANCELED) this.counters.cancellations++;
      if (op.zc && target && !job.failed && !target.closed && (errno === ENOMEM || errno === EOPNOTSUPP)) {
        // The kernel will not pin this buffer (RLIMIT_MEMLOCK) or this socket cannot do zero-copy:
        // send the same range again with a plain send instead of failing.
        target.plainReason = errno === ENOMEM ? 'memlock' : 'unsupported';
        this.countFallback(null, target.plainReason);
        job.next = op.offset;
        if (!op.awaitingNotif) this.releaseOp(op);
        this.kick(target);
        return;
      }
      const err =
        errno === ECANCELED
          ? new ZcSendError('ZCSEND_ERR_CANCELLED', 'the send was cancelled', { errno, syscall: 'io_uring_enter' })
          : errnoError('ZCSEND_ERR_SEND_FAILED', res, 'io_uring_enter', 'send failed');
      if (!op.awaitingNotif) this.releaseOp(op);
      if (target) this.failTarget(target, err, true);
      else this.failJob(job, err);
      return;
    }

    if (res > op.length) {
      // More bytes than asked: the kernel broke the contract, or a user_data went astray. Never count it.
      this.violation('oversized-first-cqe', op.id, res, flags);
      if (!op.awaitingNotif) this.releaseOp(op);
      const err = new ZcSendError('ZCSEND_ERR_PROTOCOL', `the kernel reported ${res} bytes for an op of ${op.length}`, { syscall: 'io_uring_enter' });
      if (target) this.failTarget(target, err, true);
      else this.failJob(job, err);
      return;
    }
    op.accepted = res;
    job.acked += res;
    this.counters.bytesSent += res;
    if (!op.zc) this.counters.bytesPlain += res;
    if (target?.socket) refreshIdleTimer(target.socket);
    if (res < op.length && target) {
      if (res === 0) {
        if (!op.awaitingNotif) this.releaseOp(op);
        this.failTarget(target, new ZcSendError('ZCSEND_ERR_SEND_FAILED', 'the socket accepted no bytes', { syscall: 'io_uring_enter' }), true);
        return;
      }
      // Short send: the rest goes out as a new op, still ahead of everything queued behind it.
      job.next = op.offset + res;
    }
    if (job.acked >= job.end || !target) {
      if (target && target.queue[0] === job) target.queue.shift();
      this.settleJob(job);
    }
    if (!op.awaitingNotif) this.releaseOp(op);
    if (target) this.kick(target);
  }

  private onNotification(op: Op, res: number): void {
    op.awaitingNotif = false;
    this.counters.notifications++;
    this.counters.pendingNotifications--;
    // res is a flag word, not an error: bit 31 set reads as a negative int32.
    const copied = (res & IORING_NOTIF_USAGE_ZC_COPIED) !== 0;
    if (op.accepted > 0) {
      if (copied) {
        this.counters.bytesCopied += op.accepted;
        op.job.report.copiedOps++;
        copiedChannel.publish({ fd: op.target?.fd ?? -1, bytes: op.accepted });
      } else {
        this.counters.bytesZeroCopy += op.accepted;
      }
    }
    const target = op.target;
    if (copied && this.options.adaptive && target && target.plainReason === null) {
      // The kernel copies for this path anyway; SEND_ZC would only add cost from here on.
      target.plainReason = 'copied';
      this.countFallback(null, 'copied');
      this.peers.markCopied(target.peer);
    }
    this.releaseOp(op);
  }

  private releaseOp(op: Op): void {
    if (!this.ops.has(op.id)) return;
    this.counters.opsReleased++;
    this.forgetOp(op);
  }

  private forgetOp(op: Op): void {
    if (!this.ops.delete(op.id)) return;
    this.counters.pinnedBytes -= op.length;
    op.job.liveOps--;
    if (op.target) {
      op.target.liveOps--;
      this.maybeForgetTarget(op.target);
    }
    this.maybeReleaseJob(op.job);
    this.checkIdleRef();
  }

  /**
   * Fail every send queued on the socket and cancel the op in flight. After a partial or failed
   * write the byte stream is broken, so a socket that is still open gets destroyed.
   */
  private failTarget(target: Target, err: ZcSendError, destroySocket: boolean): void {
    const jobs = target.queue.splice(0);
    for (const job of jobs) this.failJob(job, err);
    // The cancelled op stays the socket's active op until its first CQE: a cancel that races
    // with progress completes with a partial count, and nothing may overtake it meanwhile.
    const active = target.active;
    if (active && !active.gotFirst && this.ring) {
      const rc = this.ring.cancel(active.id);
      if (rc >= 0) this.requestSubmit();
    }
    if (destroySocket && target.socket && !target.socket.destroyed) {
      target.socket.destroy();
    }
    this.maybeForgetTarget(target);
  }

  private maybeForgetTarget(target: Target): void {
    if (target.queue.length > 0 || target.liveOps > 0 || target.waitingLibuv) return;
    this.busyTargets.delete(target);
    if (!target.socket && this.fdTargets.get(target.fd) === target) this.fdTargets.delete(target.fd);
  }

  // ---- event-loop references and draining --------------------------------------------------

  private checkIdleRef(): void {
    if (this.ops.size === 0 && this.rawOps.size === 0) this.ring?.unref();
    this.checkDrained();
  }

  private isDrained(): boolean {
    return this.ops.size === 0 && this.rawOps.size === 0 && this.unreleasedJobs === 0;
  }

  private checkDrained(): void {
    if (this.drainWaiters.length === 0 || !this.isDrained()) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function assertBytes(data: unknown): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', 'data must be a Buffer or Uint8Array');
  }
}

let threadSender: Sender | null = null;

/** The shared Sender of this thread (each worker thread gets its own ring), created on first use. */
export function getSender(): Sender {
  if (!threadSender || !threadSender.isOpen) threadSender = new Sender();
  return threadSender;
}

export type { ZcSendErrorCode };
