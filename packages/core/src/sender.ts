import * as net from 'node:net';
import type * as dgram from 'node:dgram';
import { fallbackChannel } from './diagnostics.js';
import { ZcSendError, errnoError, type ZcSendErrorCode } from './errors.js';
import { resolveSenderOptions, type ResolvedSenderOptions, type SenderOptions } from './options.js';
import { PeerVerdicts } from './peer-verdicts.js';
import { dgramFd, socketEligibility, type FallbackReason } from './sockets.js';
import { emptyStats, type SenderStats } from './stats.js';
import { CompletionRouter } from './sender/completions.js';
import { CopyPath, copyReason } from './sender/copy-path.js';
import { JobTracker } from './sender/jobs.js';
import { OpTable } from './sender/op-table.js';
import { openRing } from './sender/open-ring.js';
import type { RawRing, SendHandle, SendOptions } from './sender/public-types.js';
import { RawRingHandle } from './sender/raw-ring.js';
import { RegisteredBuffers } from './sender/registered-buffers.js';
import { RingLink } from './sender/ring-link.js';
import { assertBytes, assertNetSocket, assertSocketFd, checkDatagramArgs } from './sender/send-args.js';
import { SocketQueues } from './sender/socket-queues.js';
import { TargetRegistry } from './sender/target-registry.js';

export type { RawOp, RawRing, SendHandle, SendOptions, SendReport } from './sender/public-types.js';

type SenderState = 'open' | 'closing' | 'closed';

/**
 * Zero-copy sends on one ring (or the copy backend). The parts live in ./sender/: the op table
 * and dual-CQE state machine, the per-socket queues, the copy path, registered buffers, the
 * ring link (submission, retries, failure); this class wires them and checks what callers pass.
 */
export class Sender {
  /** 'io_uring' when a ring is open, else 'copy'. */
  backend: 'io_uring' | 'copy';
  /** Why the copy backend is in use, or null. */
  fallbackReason: string | null;
  /** Ring setup description (flags), or null on the copy backend. */
  readonly ringDescription: string | null;

  private readonly options: ResolvedSenderOptions;
  private readonly counters: SenderStats;
  private readonly link: RingLink;
  private readonly targets = new TargetRegistry();
  private readonly jobs: JobTracker;
  private readonly ops: OpTable;
  private readonly buffers: RegisteredBuffers;
  private readonly queues: SocketQueues;
  private readonly copy: CopyPath;
  private readonly completions: CompletionRouter;
  private readonly peers = new PeerVerdicts();
  /**
   * No new raw op may start: the ring is closed, or destroy() cancelled what it held (an op
   * queued after that, say by a completion already in the CQ, would be left for no one to cancel).
   */
  private readonly isClosed = (): boolean => this.state === 'closed' || this.destroyed;
  private state: SenderState = 'open';
  private destroyed = false;
  private closePromise: Promise<void> | null = null;
  private drainWaiters: Array<() => void> = [];

  constructor(options: SenderOptions = {}) {
    this.options = resolveSenderOptions(options);
    // The parts first, the ring last: its completion callback is the router's own.
    this.counters = emptyStats('copy');
    this.link = new RingLink(this.counters, (err) => this.onRingFailed(err));
    this.jobs = new JobTracker(() => this.checkDrained());
    this.ops = new OpTable(this.counters, this.link, this.targets, this.jobs, () => this.checkDrained());
    this.buffers = new RegisteredBuffers(this.counters);
    this.queues = new SocketQueues(this.options, this.counters, this.link, this.ops, this.jobs, this.targets, this.buffers, this.peers);
    this.copy = new CopyPath(this.counters, this.jobs);
    this.completions = new CompletionRouter(this.counters, this.options.adaptive, this.link, this.ops, this.jobs, this.queues, this.peers);
    const { ring, reason } = openRing(this.options, this.completions.onBatch);
    this.link.attach(ring);
    this.backend = ring ? 'io_uring' : 'copy';
    this.counters.backend = this.backend;
    this.fallbackReason = ring ? null : reason;
    this.ringDescription = ring ? ring.description : null;
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
    // Every argument is checked before the job exists: a job created and then thrown away would
    // count as unreleased forever, and close() would never resolve.
    if (typeof socket === 'number') assertSocketFd(socket);
    else assertNetSocket(socket);
    const threshold = opts.threshold ?? this.options.threshold;
    const fixedSlot = opts.fixedBuffer === undefined ? -1 : this.buffers.checkFixed(opts.fixedBuffer, data);
    const { job, handle } = this.jobs.create(data);
    job.fixedSlot = fixedSlot;
    if (this.state !== 'open') {
      this.jobs.fail(job, new ZcSendError('ZCSEND_ERR_SENDER_CLOSED', 'the sender is closed'));
      return handle;
    }

    if (typeof socket === 'number') {
      if (!this.link.ring) {
        this.copy.sendFd(job, socket, this.copyReason());
        return handle;
      }
      this.queues.enqueue(job, this.queues.forFd(socket), data.byteLength < threshold);
      return handle;
    }

    if (socket.destroyed || !socket.writable) {
      this.jobs.fail(job, new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket is closed or no longer writable'));
      return handle;
    }
    const existing = this.targets.bySocket.get(socket);
    if (existing && existing.queue.length > 0) {
      // Earlier sends on this socket are still in the ring: this one queues behind them to keep order.
      this.queues.enqueue(job, existing, data.byteLength < threshold);
      return handle;
    }
    if (!this.link.ring) {
      this.copy.sendSocket(job, socket, this.copyReason());
      return handle;
    }
    const eligibility = socketEligibility(socket);
    if (eligibility.reason) {
      this.copy.sendSocket(job, socket, eligibility.reason);
      return handle;
    }
    if (data.byteLength < threshold) {
      this.copy.sendSocket(job, socket, 'below-threshold');
      return handle;
    }
    this.queues.enqueue(job, existing ?? this.queues.forSocket(socket, eligibility.fd), false);
    return handle;
  }

  /** Send one datagram on a UDP socket (dgram.Socket or raw fd) to `port`/`address`. */
  sendTo(socket: dgram.Socket | number, data: Uint8Array, port: number, address: string): SendHandle {
    assertBytes(data);
    const isDgram = checkDatagramArgs(socket, port, address);
    const { job, handle } = this.jobs.create(data);
    if (this.state !== 'open') {
      this.jobs.fail(job, new ZcSendError('ZCSEND_ERR_SENDER_CLOSED', 'the sender is closed'));
      return handle;
    }
    const fd = isDgram ? dgramFd(socket) : (socket as number);
    const ring = this.link.ring;
    if (!ring || fd < 0) {
      if (!isDgram) {
        this.jobs.fail(job, new ZcSendError('ZCSEND_ERR_URING_UNAVAILABLE', `raw fd datagrams need io_uring: ${this.fallbackReason}`));
        return handle;
      }
      this.copy.sendDatagram(job, socket, port, address, ring ? 'no-fd' : this.copyReason());
      return handle;
    }
    const op = this.ops.newOp(job, null, true, 0, data.byteLength);
    const rc = ring.sendtoZc(fd, data, 0, data.byteLength, 0, this.link.zcFlags, port, address, op.id);
    if (rc < 0) {
      this.ops.dropUnsubmitted(op);
      this.jobs.fail(job, errnoError('ZCSEND_ERR_SUBMIT_FAILED', rc, 'io_uring_enter', 'could not queue the datagram'));
      return handle;
    }
    this.ops.markQueued(op);
    job.next = job.end;
    return handle;
  }

  /**
   * Why a large send on this socket would not use SEND_ZC now, or null when it would: no ring,
   * an ineligible socket, or the adaptive verdict (loopback peer, peer or socket seen copying).
   * Lets adapters leave such bodies to their framework's own write path.
   */
  plainReasonFor(socket: net.Socket): FallbackReason | null {
    if (!this.link.ring) return this.copyReason();
    const eligibility = socketEligibility(socket);
    if (eligibility.reason) return eligibility.reason;
    const target = this.targets.bySocket.get(socket);
    if (target) return target.plainReason;
    return this.queues.adaptiveVerdict(socket.remoteAddress);
  }

  /**
   * Whether sends on this socket are still queued or referenced by the kernel. A socket that
   * holds zero-copy ops after its response finished has a peer that is not reading: closing it
   * with a FIN leaves the buffers pinned in the orphaned kernel socket until the peer reads, so
   * close such a socket with a reset (`socket.resetAndDestroy()`) to release them at once.
   */
  holds(socket: net.Socket | number): boolean {
    const target = this.targets.lookup(socket);
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
    const ring = this.link.ring;
    if (!ring || this.state !== 'open') return -1;
    return this.buffers.register(ring, buf);
  }

  /**
   * Give the slot back. The kernel keeps a replaced buffer until its last op lets go, and every
   * op keeps its own reference to the memory, so this is safe with sends still in flight.
   */
  unregisterBuffer(slot: number): void {
    this.buffers.unregister(slot, this.state !== 'closed' ? this.link.ring : null);
  }

  /** Cancel everything queued or in flight on this socket; its pending sends reject with `err`. */
  cancel(socket: net.Socket | number, err?: ZcSendError): void {
    const target = this.targets.lookup(socket);
    if (target) this.queues.fail(target, err ?? new ZcSendError('ZCSEND_ERR_CANCELLED', 'the send was cancelled'), false);
  }

  stats(): SenderStats {
    this.counters.inFlightOps = this.ops.size;
    this.counters.cqOverflows = this.link.ring?.overflow ?? 0;
    return { ...this.counters, fallbacks: { ...this.counters.fallbacks } };
  }

  /** Stop taking sends, let queued ones finish, wait for every notification, then close the ring. */
  close(): Promise<void> {
    if (!this.closePromise) {
      if (this.state === 'open') this.state = 'closing';
      this.closePromise = this.whenDrained().then(() => {
        this.state = 'closed';
        this.link.ring?.close();
      });
    }
    return this.closePromise;
  }

  /** Reject queued sends, cancel ops in flight, then drain like close(). */
  destroy(err?: Error): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    this.destroyed = true;
    const reason =
      err instanceof ZcSendError ? err : new ZcSendError('ZCSEND_ERR_SENDER_CLOSED', 'the sender was destroyed', { cause: err });
    this.queues.cancelAll(reason);
    // File-engine chains (splice, poll) may wait on a stalled peer forever: cancel them too. Their
    // owners see -ECANCELED and settle; close() then waits for the last CQE.
    const ring = this.link.ring;
    if (ring && this.ops.raw.size > 0) {
      for (const id of this.ops.raw.keys()) ring.cancel(id);
      this.link.requestSubmit();
    }
    return this.close();
  }

  /** Resolves when nothing is queued or in flight (without closing). */
  whenDrained(): Promise<void> {
    if (this.isDrained()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * The ring, for ops that are not sends (the file engines' splice chains, polls): they share
   * this thread's ring and op table, so completions route here and close() waits for them.
   * Null on the copy backend.
   */
  ringOps(): RawRing | null {
    const ring = this.link.ring;
    if (!ring || this.state === 'closed') return null;
    return new RawRingHandle(ring, this.link, this.ops, this.isClosed);
  }

  /** Why a send took the copy path when there is no ring: asked for, or not possible. */
  private copyReason(): FallbackReason {
    return copyReason(this.options.backend);
  }

  /**
   * The ring was closed for good (see RingLink): fail every send it still owned, let the file
   * engines' ops settle, and carry on with the copy backend.
   */
  private onRingFailed(err: ZcSendError): void {
    this.backend = 'copy';
    this.fallbackReason = `io_uring failed: ${err.message}`;
    fallbackChannel.publish({ reason: 'unavailable', detail: this.fallbackReason });
    this.queues.abandonAll(err);
    this.ops.abandonAll(err);
    this.ops.checkIdle();
  }

  private isDrained(): boolean {
    return this.ops.size === 0 && this.jobs.unreleased === 0;
  }

  private checkDrained(): void {
    if (this.drainWaiters.length === 0 || !this.isDrained()) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

let threadSender: Sender | null = null;

/** The shared Sender of this thread (each worker thread gets its own ring), created on first use. */
export function getSender(): Sender {
  if (!threadSender || !threadSender.isOpen) threadSender = new Sender();
  return threadSender;
}

export type { ZcSendErrorCode };
