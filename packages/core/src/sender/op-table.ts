import { constants as osConstants } from 'node:os';
import { MAX_USER_DATA } from '../constants.js';
import { violationChannel } from '../diagnostics.js';
import type { ZcSendError } from '../errors.js';
import type { SenderStats } from '../stats.js';
import type { JobTracker } from './jobs.js';
import type { RawOp } from './public-types.js';
import type { Job, Op, Target } from './records.js';
import type { RingLink } from './ring-link.js';
import type { TargetRegistry } from './target-registry.js';

const { ECANCELED } = osConstants.errno;

/**
 * Every op the ring may still complete, by user_data: the Sender's sends and the raw ops queued
 * through ringOps(). Keeps the ring referenced (the event loop alive) while any is live.
 */
export class OpTable {
  readonly sends = new Map<number, Op>();
  /** Ring ops that are not sends (splice, poll) queued by the file engines through ringOps(). */
  readonly raw = new Map<number, RawOp>();
  private nextId = 1;

  /** `onIdle` runs whenever an op left the table (the Sender checks for drain). */
  constructor(
    private readonly counters: SenderStats,
    private readonly link: RingLink,
    private readonly targets: TargetRegistry,
    private readonly jobs: JobTracker,
    private readonly onIdle: () => void,
  ) {}

  /** Live ops of both kinds. */
  get size(): number {
    return this.sends.size + this.raw.size;
  }

  allocateId(): number {
    // ids wrap within 32 bits; skip any still owned by a live op.
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= MAX_USER_DATA ? 1 : id + 1;
      if (!this.sends.has(id) && !this.raw.has(id)) return id;
    }
  }

  newOp(job: Job, target: Target | null, zc: boolean, offset: number, length: number): Op {
    const id = this.allocateId();
    const op: Op = { id, job, target, zc, offset, length, gotFirst: false, awaitingNotif: false, accepted: 0 };
    this.sends.set(id, op);
    if (this.sends.size + this.raw.size === 1) this.link.ring?.ref();
    job.liveOps++;
    if (target) target.liveOps++;
    this.counters.pinnedBytes += length;
    return op;
  }

  /** The ring queued the op's SQE: from now on it counts as submitted. */
  markQueued(op: Op): void {
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
  dropUnsubmitted(op: Op): void {
    op.gotFirst = true;
    this.forget(op);
  }

  /** The kernel let go of the op's buffer. */
  release(op: Op): void {
    if (!this.sends.has(op.id)) return;
    this.counters.opsReleased++;
    this.forget(op);
  }

  private forget(op: Op): void {
    if (!this.sends.delete(op.id)) return;
    this.counters.pinnedBytes -= op.length;
    op.job.liveOps--;
    if (op.target) {
      op.target.liveOps--;
      this.targets.forgetIfIdle(op.target);
    }
    this.jobs.maybeRelease(op.job);
    this.checkIdle();
  }

  /** Let the event loop exit once no op is live, and tell the owner. */
  checkIdle(): void {
    if (this.sends.size === 0 && this.raw.size === 0) this.link.ring?.unref();
    this.onIdle();
  }

  /** The ring is gone: no CQE will come. Fail and release every send, cancel every raw op. */
  abandonAll(err: ZcSendError): void {
    for (const op of [...this.sends.values()]) {
      this.jobs.fail(op.job, err);
      if (op.awaitingNotif) this.counters.pendingNotifications--;
      this.release(op);
    }
    for (const [id, raw] of [...this.raw]) {
      this.raw.delete(id);
      try {
        raw.onComplete(-ECANCELED, 0);
      } catch (handlerErr) {
        violationChannel.publish({ kind: 'raw-handler-error', error: handlerErr });
      }
    }
  }
}
