/**
 * Fixed-size read buffers for the copy engine. A buffer comes back only once the send that used
 * it is *released* (the kernel no longer reads it), so giving it out again is safe. How many
 * exist is bounded by the caller's byte budget, not here.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private allocated = 0;

  constructor(readonly bufferSize: number) {}

  get buffers(): number {
    return this.allocated;
  }

  get freeBuffers(): number {
    return this.free.length;
  }

  take(): Buffer {
    const buf = this.free.pop();
    if (buf) return buf;
    this.allocated++;
    // Its own allocation (not a slice of Node's shared pool), so it can later be registered.
    return Buffer.allocUnsafeSlow(this.bufferSize);
  }

  give(buf: Buffer): void {
    this.free.push(buf);
  }

  /** Drops the free buffers; call once every buffer taken was given back. */
  clear(): void {
    this.allocated -= this.free.length;
    this.free.length = 0;
  }
}
