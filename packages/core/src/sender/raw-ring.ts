import type { RingBackend } from '../backend.js';
import type { OpTable } from './op-table.js';
import type { RawOp, RawRing } from './public-types.js';
import type { RingLink } from './ring-link.js';

/** -EBADFD: the Sender closed its ring, or is being destroyed. */
export const RING_CLOSED = -77;

/**
 * What ringOps() hands the file engines: the ring, and a queue that gives their ops user_data in
 * the Sender's op table, so their completions route back to them and close() waits for them.
 */
export class RawRingHandle implements RawRing {
  constructor(
    readonly ring: RingBackend,
    private readonly link: RingLink,
    private readonly ops: OpTable,
    private readonly isClosed: () => boolean,
  ) {}

  queue(specs: RawOp[]): number {
    if (this.isClosed()) return RING_CLOSED;
    const ring = this.ring;
    // A linked chain must reach the kernel in one submission: flush what is pending first so
    // the SQ has room for the whole chain.
    this.link.flushPending();
    let queued = 0;
    for (const spec of specs) {
      const id = this.ops.allocateId();
      const rc = spec.prepare(ring, id);
      if (rc < 0) {
        // Earlier SQEs of the chain are queued and will run; their callbacks still come.
        if (queued > 0) this.link.requestSubmit();
        return rc;
      }
      this.ops.raw.set(id, spec);
      if (spec.target) this.link.unsubmitted.push(spec);
      queued++;
      if (this.ops.size === 1) ring.ref();
    }
    this.link.requestSubmit();
    return 0;
  }

  queueOne(spec: RawOp): number {
    if (this.isClosed()) return RING_CLOSED;
    const id = this.ops.allocateId();
    const rc = spec.prepare(this.ring, id);
    if (rc < 0) return rc;
    this.ops.raw.set(id, spec);
    if (spec.target) this.link.unsubmitted.push(spec);
    if (this.ops.size === 1) this.ring.ref();
    this.link.requestSubmit();
    return 0;
  }

  submit(): void {
    this.link.requestSubmit();
  }
}
