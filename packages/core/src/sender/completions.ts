import { constants as osConstants } from 'node:os';
import type { CompletionHandler } from '../backend.js';
import { CANCEL_TAG_HI, IORING_CQE_F_MORE, IORING_CQE_F_NOTIF, IORING_NOTIF_USAGE_ZC_COPIED } from '../constants.js';
import { copiedChannel, violationChannel } from '../diagnostics.js';
import { ZcSendError, errnoError } from '../errors.js';
import type { PeerVerdicts } from '../peer-verdicts.js';
import { refreshIdleTimer } from '../sockets.js';
import type { SenderStats } from '../stats.js';
import { countFallback, type JobTracker } from './jobs.js';
import type { OpTable } from './op-table.js';
import type { RawOp } from './public-types.js';
import type { Op } from './records.js';
import type { RingLink } from './ring-link.js';
import type { SocketQueues } from './socket-queues.js';

const { ECANCELED, ENOMEM, EOPNOTSUPP } = osConstants.errno;

/**
 * The dual-CQE state machine: routes each CQE by user_data to its send op (first CQE, then the
 * notification when F_MORE said one follows) or raw op, and surfaces every CQE that breaks the
 * SEND_ZC contract as a violation instead of trusting it.
 */
export class CompletionRouter {
  constructor(
    private readonly counters: SenderStats,
    private readonly adaptive: boolean,
    private readonly link: RingLink,
    private readonly ops: OpTable,
    private readonly jobs: JobTracker,
    private readonly queues: SocketQueues,
    private readonly peers: PeerVerdicts,
  ) {}

  /**
   * The ring's completion callback, one batch: `count` records of [userDataLo, userDataHi, res,
   * flags]. An arrow the ring calls directly, so no wrapper call sits on this path.
   */
  readonly onBatch: CompletionHandler = (cqes, count, overflow) => {
    this.link.beginBatch();
    try {
      for (let i = 0; i < count; i++) {
        const base = i * 4;
        this.onCqe(cqes[base]! >>> 0, cqes[base + 1]! >>> 0, cqes[base + 2]!, cqes[base + 3]! >>> 0);
      }
    } finally {
      this.link.endBatch(overflow);
    }
  };

  private onCqe(userData: number, userDataHi: number, res: number, flags: number): void {
    if (userDataHi === CANCEL_TAG_HI) return; // our own ASYNC_CANCEL completing: nothing owns it
    const op = userDataHi === 0 ? this.ops.sends.get(userData) : undefined;
    if (!op) {
      const raw = userDataHi === 0 ? this.ops.raw.get(userData) : undefined;
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
      this.jobs.fail(op.job, new ZcSendError('ZCSEND_ERR_PROTOCOL', `completion handling failed: ${(err as Error).message}`, { cause: err }));
    }
  }

  private onRawCqe(userData: number, raw: RawOp, res: number, flags: number): void {
    const last = !(flags & IORING_CQE_F_MORE);
    if (last) this.ops.raw.delete(userData);
    try {
      raw.onComplete(res, flags);
    } catch (err) {
      this.violation('handler-error', userData, res, flags);
      violationChannel.publish({ kind: 'raw-handler-error', error: err });
    }
    // Only after the handler: it may queue the next ops of the same transfer, and close() must
    // not see a drained table (and close the ring) in between.
    if (last) this.ops.checkIdle();
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
        countFallback(this.counters, null, target.plainReason);
        job.next = op.offset;
        if (!op.awaitingNotif) this.ops.release(op);
        this.queues.kick(target);
        return;
      }
      const err =
        errno === ECANCELED
          ? new ZcSendError('ZCSEND_ERR_CANCELLED', 'the send was cancelled', { errno, syscall: 'io_uring_enter' })
          : errnoError('ZCSEND_ERR_SEND_FAILED', res, 'io_uring_enter', 'send failed');
      if (!op.awaitingNotif) this.ops.release(op);
      if (target) this.queues.fail(target, err, true);
      else this.jobs.fail(job, err);
      return;
    }

    if (res > op.length) {
      // More bytes than asked: the kernel broke the contract, or a user_data went astray. Never count it.
      this.violation('oversized-first-cqe', op.id, res, flags);
      if (!op.awaitingNotif) this.ops.release(op);
      const err = new ZcSendError('ZCSEND_ERR_PROTOCOL', `the kernel reported ${res} bytes for an op of ${op.length}`, { syscall: 'io_uring_enter' });
      if (target) this.queues.fail(target, err, true);
      else this.jobs.fail(job, err);
      return;
    }
    op.accepted = res;
    job.acked += res;
    this.counters.bytesSent += res;
    if (!op.zc) this.counters.bytesPlain += res;
    if (target?.socket) refreshIdleTimer(target.socket);
    if (res < op.length && target) {
      if (res === 0) {
        if (!op.awaitingNotif) this.ops.release(op);
        this.queues.fail(target, new ZcSendError('ZCSEND_ERR_SEND_FAILED', 'the socket accepted no bytes', { syscall: 'io_uring_enter' }), true);
        return;
      }
      // Short send: the rest goes out as a new op, still ahead of everything queued behind it.
      job.next = op.offset + res;
    }
    if (job.acked >= job.end || !target) {
      if (target && target.queue[0] === job) target.queue.shift();
      this.jobs.settle(job);
    }
    if (!op.awaitingNotif) this.ops.release(op);
    if (target) this.queues.kick(target);
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
    if (copied && this.adaptive && target && target.plainReason === null) {
      // The kernel copies for this path anyway; SEND_ZC would only add cost from here on.
      target.plainReason = 'copied';
      countFallback(this.counters, null, 'copied');
      this.peers.markCopied(target.peer);
    }
    this.ops.release(op);
  }
}
