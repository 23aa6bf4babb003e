import type { BypassReason } from './eligibility.js';

/** What the plugin did with reply bodies (the Sender and FileSender keep their own counters). */
export interface ReplyStats {
  /** Byte bodies (Buffer, Uint8Array, string) handed to the Sender. */
  bodies: number;
  /** File bodies (fs.ReadStream with a path) handed to the FileSender. */
  files: number;
  /** Body bytes the kernel accepted for those replies. */
  bytes: number;
  /** Replies whose zero-copy send failed (client gone, send error): the connection was closed. */
  failed: number;
  /** Replies still sending, or whose buffers the kernel may still read. */
  inFlight: number;
  /** Eligible-looking bodies left to Fastify, by reason. */
  bypassed: Partial<Record<BypassReason, number>>;
}

/** Counts replies and lets close() wait until none is in flight. */
export class ReplyTracker {
  private readonly counters: ReplyStats = { bodies: 0, files: 0, bytes: 0, failed: 0, inFlight: 0, bypassed: {} };
  private idleWaiters: Array<() => void> = [];

  bypass(reason: BypassReason): void {
    this.counters.bypassed[reason] = (this.counters.bypassed[reason] ?? 0) + 1;
  }

  /** A reply may go out through the plugin; pair with sent() or abandoned(). */
  start(): void {
    this.counters.inFlight++;
  }

  /** The reply went through the Sender (or file engines); `failed` when it could not complete. */
  sent(kind: 'bodies' | 'files', bytes: number, failed: boolean): void {
    this.counters[kind]++;
    this.counters.bytes += bytes;
    if (failed) this.counters.failed++;
    this.settle();
  }

  /** Nothing of it went through the plugin after all: Fastify wrote it, for this reason. */
  abandoned(reason: BypassReason): void {
    this.bypass(reason);
    this.settle();
  }

  private settle(): void {
    this.counters.inFlight--;
    if (this.counters.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Resolves once no reply is in flight. */
  whenIdle(): Promise<void> {
    if (this.counters.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  snapshot(): ReplyStats {
    return { ...this.counters, bypassed: { ...this.counters.bypassed } };
  }
}
