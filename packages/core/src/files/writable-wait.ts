import type { RawRing } from '../sender.js';
import { IOSQE_FIXED_FILE, POLLOUT } from './ring-flags.js';

/**
 * One wait for a socket to take more bytes: a one-shot IORING_OP_POLL_ADD(POLLOUT) naming the
 * socket by its registered-file slot, so the wait reaches the connection the slot was filled
 * with whatever libuv does with the fd number meanwhile (DESIGN.md "Sockets owned by libuv").
 * `onDone` runs once, inside the Sender's completion handler, with the poll's result: the ready
 * mask, -ECANCELED after cancel(), or another -errno. The slot must stay filled until then. A
 * caller that queues its next op from `onDone` does so before the Sender can see its op table
 * drained (and close the ring).
 */
export class WritableWait {
  private userData = 0;
  private pending = false;

  private constructor(private readonly raw: RawRing) {}

  /** Queues the wait; -errno (and `onDone` is never called) when it could not be queued. */
  static start(raw: RawRing, slot: number, onDone: (res: number) => void): WritableWait | number {
    const wait = new WritableWait(raw);
    const rc = raw.queue([
      {
        prepare: (ring, ud) => {
          const prepared = ring.pollAdd!(slot, POLLOUT, IOSQE_FIXED_FILE, ud);
          if (prepared >= 0) {
            wait.userData = ud;
            wait.pending = true;
          }
          return prepared;
        },
        onComplete: (res) => {
          wait.pending = false;
          onDone(res);
        },
      },
    ]);
    return rc < 0 ? rc : wait;
  }

  /** Asks the kernel to cancel the poll (its CQE then comes with -ECANCELED); a no-op once done. */
  cancel(): void {
    if (!this.pending) return;
    // Submitted now, not batched: the socket may be gone for good and the wait must end.
    if (this.raw.ring.cancel(this.userData) >= 0) this.raw.ring.submit();
  }
}
