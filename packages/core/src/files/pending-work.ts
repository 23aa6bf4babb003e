/** Counts work that close() must wait for: sendFile calls in progress and sends not yet released. */
export class PendingWork {
  private count = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  begin(): void {
    this.count++;
  }

  end(): void {
    this.count--;
    if (this.count > 0 || this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Counts a send until its `released` settles, then runs `onReleased` (e.g. give its buffer back). */
  untilReleased(released: Promise<unknown>, onReleased: () => void): void {
    this.begin();
    const done = (): void => {
      onReleased();
      this.end();
    };
    // A Sender's `released` never rejects; a stand-in that does must not wedge close().
    void released.then(done, done);
  }

  whenIdle(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
