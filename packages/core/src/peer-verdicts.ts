/**
 * Remembers peers whose zero-copy sends the kernel reported as copied (local delivery, devices
 * without scatter-gather), so new sockets to them start with plain sends. Bounded and expiring:
 * routes change, and a verdict must not pin a peer forever.
 */
export class PeerVerdicts {
  private readonly copied = new Map<string, number>();

  constructor(
    private readonly maxEntries = 1024,
    private readonly ttlMs = 10 * 60_000,
  ) {}

  markCopied(address: string | undefined, now = Date.now()): void {
    if (!address) return;
    this.copied.delete(address);
    this.copied.set(address, now + this.ttlMs);
    if (this.copied.size > this.maxEntries) {
      const oldest = this.copied.keys().next().value;
      if (oldest !== undefined) this.copied.delete(oldest);
    }
  }

  isCopied(address: string | undefined, now = Date.now()): boolean {
    if (!address) return false;
    const expires = this.copied.get(address);
    if (expires === undefined) return false;
    if (expires <= now) {
      this.copied.delete(address);
      return false;
    }
    return true;
  }

  get size(): number {
    return this.copied.size;
  }
}
