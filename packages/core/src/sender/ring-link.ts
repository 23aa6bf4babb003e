import { constants as osConstants } from 'node:os';
import type { RingBackend } from '../backend.js';
import { IORING_SEND_ZC_REPORT_USAGE } from '../constants.js';
import { violationChannel } from '../diagnostics.js';
import { ZcSendError, errnoError } from '../errors.js';
import { currentFd } from '../sockets.js';
import type { SenderStats } from '../stats.js';
import type { SocketFd } from './public-types.js';

const { EAGAIN, EINTR, EBUSY } = osConstants.errno;
/** Transient submit failures retried this many times (1 ms apart) before the ring counts as failed. */
const MAX_SUBMIT_RETRIES = 1000;

/**
 * The Sender's hold on its ring: submission (batched while completions are handled), transient
 * submit retries, and giving the ring up for good when it stops accepting work.
 */
export class RingLink {
  /** Null on the copy backend, and after the ring failed for good (see fail). */
  ring: RingBackend | null = null;
  /** SEND_ZC flags every op asks for (usage reports where the kernel has them). */
  zcFlags = 0;
  /** Ops naming a libuv socket's fd (sends, raw ops with a target) queued since the last successful submit. */
  readonly unsubmitted: Array<{ readonly target?: SocketFd | null }> = [];
  private submitRetry: NodeJS.Timeout | null = null;
  private submitRetries = 0;
  private inBatch = false;
  private submitPending = false;
  private lastOverflow = 0;

  /**
   * `onFailed` runs once the ring was closed for good (after fail()): it settles whatever the
   * ring still owned.
   */
  constructor(
    private readonly counters: SenderStats,
    private readonly onFailed: (err: ZcSendError) => void,
  ) {}

  /** Take the ring the Sender opened (null: the copy backend). Called once, before any send. */
  attach(ring: RingBackend | null): void {
    this.ring = ring;
    this.zcFlags = ring?.features.reportUsage ? IORING_SEND_ZC_REPORT_USAGE : 0;
  }

  /** Completions are being handled: submits wait for endBatch(), so one syscall covers them all. */
  beginBatch(): void {
    this.inBatch = true;
  }

  /** `reported`: the overflow count the ring passed with the batch (saves asking it). */
  endBatch(reported?: number): void {
    this.inBatch = false;
    if (this.submitPending) this.submitNow();
    const overflow = reported ?? this.ring?.overflow ?? 0;
    if (overflow !== this.lastOverflow) {
      this.lastOverflow = overflow;
      violationChannel.publish({ kind: 'cq-overflow', overflow });
    }
  }

  requestSubmit(): void {
    if (this.inBatch) {
      this.submitPending = true;
      return;
    }
    this.submitNow();
  }

  /** Submit what a batch deferred, now (a linked chain about to be queued needs the SQ room). */
  flushPending(): void {
    if (this.submitPending) this.submitNow();
  }

  private submitNow(): void {
    this.submitPending = false;
    const ring = this.ring;
    if (!ring) return;
    // After a failed submit the SQ may hold SQEs of an earlier turn, whichever call submits next.
    if (this.submitRetries > 0 && this.fdReused()) return;
    // SQEs that name libuv fds must reach the kernel before control returns to the event loop.
    let rc = ring.submit();
    for (let attempt = 0; rc < 0 && (rc === -EAGAIN || rc === -EINTR) && attempt < 3; attempt++) rc = ring.submit();
    if (rc >= 0) {
      this.clearUnsubmitted();
      this.submitRetries = 0;
      return;
    }
    this.counters.submitErrors++;
    if ((rc === -EAGAIN || rc === -EINTR || rc === -EBUSY) && this.submitRetries < MAX_SUBMIT_RETRIES) {
      // The kernel is short of room (CQ overflow backlog, memory): try again shortly.
      this.submitRetries++;
      this.submitRetry ??= setTimeout(() => {
        this.submitRetry = null;
        this.submitNow();
      }, 1);
      return;
    }
    this.fail(errnoError('ZCSEND_ERR_SUBMIT_FAILED', rc, 'io_uring_enter', 'the ring stopped accepting submissions'));
  }

  /** Popping (one op, usually) stays in optimized code; assigning `length` calls into the runtime on every submit. */
  private clearUnsubmitted(): void {
    while (this.unsubmitted.length > 0) this.unsubmitted.pop();
  }

  /**
   * A retry runs after control went back to the event loop, where libuv may have closed a socket
   * and handed its fd number to a new connection: an SQE still naming the old number must never
   * reach the kernel then, so such a ring is given up (closing it discards unsubmitted SQEs).
   * True when it was.
   */
  private fdReused(): boolean {
    const reused = this.unsubmitted.some((op) => op.target?.socket && currentFd(op.target.socket) !== op.target.fd);
    if (reused) this.fail(new ZcSendError('ZCSEND_ERR_SUBMIT_FAILED', 'a socket closed while its send waited for the ring to accept it', { syscall: 'io_uring_enter' }));
    return reused;
  }

  /**
   * The ring cannot be used any more: close it, which discards what it never submitted, then
   * let the owner fail what it still owned and carry on with the copy backend.
   */
  private fail(err: ZcSendError): void {
    const ring = this.ring;
    if (!ring) return;
    this.ring = null;
    if (this.submitRetry) clearTimeout(this.submitRetry);
    this.submitRetry = null;
    this.clearUnsubmitted();
    ring.close();
    this.onFailed(err);
  }
}
