import type * as net from 'node:net';
import { MSG_WAITALL } from '../constants.js';
import { ZcSendError, errnoError } from '../errors.js';
import type { ResolvedSenderOptions } from '../options.js';
import type { PeerVerdicts } from '../peer-verdicts.js';
import { currentFd, isLoopbackAddress, libuvIdle, type FallbackReason } from '../sockets.js';
import type { SenderStats } from '../stats.js';
import { countFallback, type JobTracker } from './jobs.js';
import type { OpTable } from './op-table.js';
import { newTarget, type Job, type Target } from './records.js';
import type { RegisteredBuffers } from './registered-buffers.js';
import type { RingLink } from './ring-link.js';
import type { TargetRegistry } from './target-registry.js';

const EMPTY = Buffer.alloc(0);

/**
 * The ring path per socket: each socket's FIFO of jobs, at most one op in flight, the next chunk
 * (or a short send's remainder) submitted only after the previous op's first CQE.
 */
export class SocketQueues {
  constructor(
    private readonly options: ResolvedSenderOptions,
    private readonly counters: SenderStats,
    private readonly link: RingLink,
    private readonly ops: OpTable,
    private readonly jobs: JobTracker,
    private readonly targets: TargetRegistry,
    private readonly buffers: RegisteredBuffers,
    private readonly peers: PeerVerdicts,
  ) {}

  /** The adaptive policy's verdict for a new socket to `peer`: plain sends from the start, or null. */
  adaptiveVerdict(peer: string | undefined): FallbackReason | null {
    if (!this.options.adaptive) return null;
    if (isLoopbackAddress(peer)) return 'loopback';
    return this.peers.isCopied(peer) ? 'copied' : null;
  }

  forSocket(socket: net.Socket, fd: number): Target {
    const target = newTarget(socket, fd, socket.remoteAddress);
    this.targets.bySocket.set(socket, target);
    // Close does not cancel: an op in flight keeps the kernel socket alive after libuv closes the fd.
    socket.once('close', () => {
      if (this.targets.bySocket.get(socket) === target) {
        this.fail(target, new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket closed before the send finished'), false);
        target.closed = true;
      }
    });
    target.plainReason = this.adaptiveVerdict(target.peer);
    return target;
  }

  forFd(fd: number): Target {
    let target = this.targets.byFd.get(fd);
    if (!target) {
      target = newTarget(null, fd, undefined);
      this.targets.byFd.set(fd, target);
    }
    return target;
  }

  enqueue(job: Job, target: Target, forcePlain: boolean): void {
    if (target.closed) {
      this.jobs.fail(job, new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket is closed'));
      return;
    }
    job.target = target;
    job.forcePlain = forcePlain;
    if (forcePlain) countFallback(this.counters, job, 'below-threshold');
    else if (target.plainReason) countFallback(this.counters, job, target.plainReason);
    target.queue.push(job);
    this.targets.busy.add(target);
    if (target.queue.length === 1) this.kick(target);
  }

  /** Submit the next chunk of the head job when the socket has nothing in flight. */
  kick(target: Target): void {
    if (target.active || target.waitingLibuv) return;
    const job = target.queue[0];
    if (!job) {
      this.targets.forgetIfIdle(target);
      return;
    }
    const ring = this.link.ring;
    if (!ring) return;
    const socket = target.socket;
    if (socket) {
      // Check liveness right before naming the fd: libuv may have closed it and the number may be reused.
      if (currentFd(socket) !== target.fd || !socket.writable) {
        this.fail(target, new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket closed before the send finished'), false);
        return;
      }
      if (job.next === 0 && !libuvIdle(socket)) {
        // Bytes libuv still holds must reach the wire before ours: wait on a write callback ('drain' may never fire).
        target.waitingLibuv = true;
        socket.write(EMPTY, () => {
          target.waitingLibuv = false;
          this.ops.checkIdle();
          this.kick(target);
        });
        return;
      }
    }
    const zc = !job.forcePlain && target.plainReason === null;
    const length = Math.min(this.options.chunkSize, job.end - job.next);
    const op = this.ops.newOp(job, target, zc, job.next, length);
    const base = zc && job.fixedSlot >= 0 ? this.buffers.at(job.fixedSlot) : null;
    const zcFlags = this.link.zcFlags;
    let rc: number;
    if (base && ring.sendZcFixed) {
      const offsetInBase = job.data.byteOffset - base.byteOffset + op.offset;
      rc = ring.sendZcFixed(target.fd, job.fixedSlot, base, offsetInBase, length, MSG_WAITALL, zcFlags, op.id);
      if (rc >= 0) this.counters.fixedOpsSubmitted++;
    } else if (zc) {
      rc = ring.sendZc(target.fd, job.data, op.offset, length, MSG_WAITALL, zcFlags, op.id);
    } else {
      rc = ring.send(target.fd, job.data, op.offset, length, MSG_WAITALL, op.id);
    }
    if (rc < 0) {
      this.ops.dropUnsubmitted(op);
      this.fail(target, errnoError('ZCSEND_ERR_SUBMIT_FAILED', rc, 'io_uring_enter', 'could not queue the send'), true);
      return;
    }
    this.ops.markQueued(op);
    this.link.unsubmitted.push(op);
    job.next += length;
    target.active = op;
    this.link.requestSubmit();
  }

  /**
   * Fail every send queued on the socket and cancel the op in flight. After a partial or failed
   * write the byte stream is broken, so a socket that is still open gets destroyed.
   */
  fail(target: Target, err: ZcSendError, destroySocket: boolean): void {
    const jobs = target.queue.splice(0);
    for (const job of jobs) this.jobs.fail(job, err);
    // The cancelled op stays the socket's active op until its first CQE: a cancel that races
    // with progress completes with a partial count, and nothing may overtake it meanwhile.
    const active = target.active;
    const ring = this.link.ring;
    if (active && !active.gotFirst && ring) {
      const rc = ring.cancel(active.id);
      if (rc >= 0) this.link.requestSubmit();
    }
    if (destroySocket && target.socket && !target.socket.destroyed) {
      target.socket.destroy();
    }
    this.targets.forgetIfIdle(target);
  }

  /** destroy(): fail every busy socket's sends and cancel their ops, leaving the sockets open. */
  cancelAll(err: ZcSendError): void {
    for (const target of [...this.targets.busy]) this.fail(target, err, false);
  }

  /** The ring is gone: no op will complete, so no socket has one in flight; their streams are broken. */
  abandonAll(err: ZcSendError): void {
    for (const target of [...this.targets.busy]) {
      target.active = null;
      this.fail(target, err, true);
    }
  }
}
