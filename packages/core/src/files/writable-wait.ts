import type { RawRing } from '../sender.js';
import { IOSQE_FIXED_FILE, POLLOUT } from './ring-flags.js';

/**
 * One wait for a socket to take more bytes: a one-shot IORING_OP_POLL_ADD(POLLOUT) naming the
 * socket by its registered-file slot, so the wait reaches the connection the slot was filled
 * with whatever libuv does with the fd number meanwhile (DESIGN.md "Sockets owned by libuv").
 * `done` settles only once the poll's CQE is in, with its result: the ready mask, -ECANCELED
 * after cancel(), or another -errno (including a failure to queue it). Until then the slot must
 * stay filled.
 */
export class WritableWait {
  readonly done: Promise<number>;
  private userData = 0;
  private pending = false;

  constructor(
    private readonly raw: RawRing,
    slot: number,
  ) {
    let resolve!: (res: number) => void;
    this.done = new Promise<number>((r) => (resolve = r));
    const rc = raw.queue([
      {
        prepare: (ring, ud) => {
          const prepared = ring.pollAdd!(slot, POLLOUT, IOSQE_FIXED_FILE, ud);
          if (prepared >= 0) {
            this.userData = ud;
            this.pending = true;
          }
          return prepared;
        },
        onComplete: (res) => {
          this.pending = false;
          resolve(res);
        },
      },
    ]);
    if (rc < 0) resolve(rc);
  }

  /** Asks the kernel to cancel the poll (its CQE then comes with -ECANCELED); a no-op once done. */
  cancel(): void {
    if (!this.pending) return;
    // Submitted now, not batched: the socket may be gone for good and the wait must end.
    if (this.raw.ring.cancel(this.userData) >= 0) this.raw.ring.submit();
  }
}
