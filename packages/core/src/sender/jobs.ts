import type { ZcSendError } from '../errors.js';
import type { FallbackReason } from '../sockets.js';
import type { SenderStats } from '../stats.js';
import type { SendHandle, SendReport } from './public-types.js';
import type { Job } from './records.js';

/**
 * Creates jobs and settles their two promises: `sent` once (resolved or rejected), `released`
 * once no op of the job is left in the kernel. Counts the jobs not yet released.
 */
export class JobTracker {
  /** Jobs whose `released` has not resolved yet. */
  unreleased = 0;

  /** `onReleased` runs after each job's `released` resolved (the Sender checks for drain). */
  constructor(private readonly onReleased: () => void) {}

  create(data: Uint8Array): { job: Job; handle: SendHandle } {
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
    this.unreleased++;
    return { job, handle: { sent, released } };
  }

  settle(job: Job): void {
    if (job.settled || job.failed) return;
    job.settled = true;
    job.report.bytes = job.acked;
    job.resolveSent(job.acked);
    this.maybeRelease(job);
  }

  fail(job: Job, err: ZcSendError): void {
    if (job.settled || job.failed) return;
    job.failed = true;
    job.report.bytes = job.acked;
    job.report.error = err;
    job.rejectSent(err);
    this.maybeRelease(job);
  }

  /** Resolve `released` once the job is settled and the kernel holds none of its ops. */
  maybeRelease(job: Job): void {
    if (job.liveOps > 0 || !(job.settled || job.failed)) return;
    job.resolveReleased(job.report);
    this.unreleased--;
    this.onReleased();
  }
}

/** Count a fallback in the stats, and on the job's report (its first reason only) when given. */
export function countFallback(counters: SenderStats, job: Job | null, reason: FallbackReason): void {
  if (job) {
    if (job.report.fallbackReason) return;
    job.report.fallbackReason = reason;
  }
  counters.fallbacks[reason] = (counters.fallbacks[reason] ?? 0) + 1;
}
