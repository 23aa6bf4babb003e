import type { FileRef } from './types.js';

/**
 * Remembers which file versions were requested once, so `auto` caches a large file only on its
 * second request (one-off downloads do not evict hot files). Bounded: the oldest paths go first.
 */
export class RepeatTracker {
  private readonly seen = new Map<string, string>();

  constructor(private readonly maxPaths = 4096) {}

  /** Records this request; true when the same version was requested before. */
  seenBefore(file: FileRef): boolean {
    const { size, mtimeMs, ino, dev } = file.stat;
    const version = `${size}:${mtimeMs}:${ino}:${dev}`;
    const previous = this.seen.get(file.path);
    this.seen.delete(file.path);
    if (previous === version) return true;
    this.seen.set(file.path, version);
    if (this.seen.size > this.maxPaths) this.seen.delete(this.seen.keys().next().value!);
    return false;
  }
}
