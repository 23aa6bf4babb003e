/** One reservation waiting for bytes. */
export interface BudgetWaiter {
  readonly bytes: number;
  readonly granted: Promise<void>;
}

interface QueuedWaiter extends BudgetWaiter {
  grant: () => void;
  reject: (err: Error) => void;
}

/**
 * A byte semaphore with a strict FIFO queue: a large request is never starved by smaller ones
 * behind it, and memory held by in-flight sends stays under `limit` whatever the load.
 */
export class ByteBudget {
  private used = 0;
  private readonly queue: QueuedWaiter[] = [];

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Takes `bytes` now if nobody is waiting and they fit. Requests above `limit` count as `limit`. */
  tryAcquire(bytes: number): boolean {
    const charge = Math.min(bytes, this.limit);
    if (this.queue.length > 0 || this.used + charge > this.limit) return false;
    this.used += charge;
    return true;
  }

  /** Queues for `bytes`; `granted` resolves once they are held (then `release` them). */
  enqueue(bytes: number): BudgetWaiter {
    let grant!: () => void;
    let reject!: (err: Error) => void;
    const granted = new Promise<void>((resolve, rej) => {
      grant = resolve;
      reject = rej;
    });
    const waiter: QueuedWaiter = { bytes: Math.min(bytes, this.limit), granted, grant, reject };
    this.queue.push(waiter);
    this.pump();
    return waiter;
  }

  /**
   * Gives up a queued waiter: it leaves the queue and its `granted` rejects with `err`. Returns
   * false when it was already granted (the caller then holds the bytes and must release them).
   */
  abandon(waiter: BudgetWaiter, err: Error): boolean {
    const i = this.queue.indexOf(waiter as QueuedWaiter);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    (waiter as QueuedWaiter).reject(err);
    // The head may have been the one blocking the others.
    if (i === 0) this.pump();
    return true;
  }

  release(bytes: number): void {
    this.used -= Math.min(bytes, this.limit);
    this.pump();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (this.used + head.bytes > this.limit) return;
      this.queue.shift();
      this.used += head.bytes;
      head.grant();
    }
  }
}
