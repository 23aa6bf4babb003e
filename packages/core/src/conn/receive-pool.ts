import type { RingBackend } from '../backend.js';

/** Provided-buffer group ids handed out so far (per process: unique on every ring). */
let nextGroup = 1;

/**
 * The buffers multishot receives draw from: one JS allocation cut into equal buffers and
 * registered as a provided-buffer ring. The kernel picks a free buffer per chunk it receives; a
 * buffer is free again once recycled. Idle connections hold none, so memory is the pool's
 * whatever the number of connections.
 */
export class ReceivePool {
  readonly group: number;
  private readonly memory: Buffer;
  /** Ids queued for the ring to take back in bulk: [count, id, id...]. */
  private readonly recycled: Uint16Array;

  private constructor(
    private readonly ring: RingBackend,
    group: number,
    readonly bufferSize: number,
    readonly count: number,
  ) {
    this.group = group;
    this.memory = Buffer.allocUnsafeSlow(bufferSize * count);
    this.recycled = new Uint16Array(count + 1);
  }

  /** A registered pool, or -errno (the ring cannot do provided buffers: the caller falls back). */
  static open(ring: RingBackend, bufferSize: number, count: number): ReceivePool | number {
    if (!ring.registerBufRing || !ring.recycleBuffer || !ring.recvMultishot) return -95; // EOPNOTSUPP
    const group = nextGroup;
    nextGroup = nextGroup >= 0xffff ? 1 : nextGroup + 1;
    const pool = new ReceivePool(ring, group, bufferSize, count);
    const rc = ring.registerBufRing(group, pool.memory, bufferSize, pool.recycled);
    return rc < 0 ? rc : pool;
  }

  /** The bytes a receive put in buffer `id`: valid until recycle(id). */
  view(id: number, length: number): Buffer {
    const start = id * this.bufferSize;
    return this.memory.subarray(start, start + length);
  }

  /**
   * Buffer `id` is the kernel's again. Queued for the ring, which takes the queue after this
   * completion batch (before the kernel can need it: the batch's submit comes first); one call
   * per buffer only if the queue is somehow full.
   */
  recycle(id: number): void {
    const queue = this.recycled;
    const n = queue[0]! + 1;
    if (n < queue.length) {
      queue[n] = id;
      queue[0] = n;
    } else {
      this.ring.recycleBuffer!(this.group, id);
    }
  }

  /** No receive draws from it any more (none may be armed): the kernel lets go of the pool. */
  close(): void {
    this.ring.unregisterBufRing?.(this.group);
  }
}
