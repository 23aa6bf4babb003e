import { closeQuietly, fstat, openForRead, readAt, sameVersion } from './file-io.js';
import type { FileRef, FileVersion } from './types.js';

/** One cached file version. Its buffer is non-null exactly while its bytes are charged to the cache. */
export interface CacheEntry {
  readonly path: string;
  readonly version: FileVersion;
  readonly size: number;
  /** A standalone allocation (Buffer.allocUnsafeSlow): anonymous memory the ring can register. */
  buffer: Buffer | null;
  /** Registered-buffer slot holding `buffer` (fixed-buffer SEND_ZC), or -1. */
  slot: number;
  /** Set while the file is being read in; concurrent misses wait on it instead of reading again. */
  loading: Promise<void> | null;
  /** Sends that may still read the buffer: from the send until its `released`. */
  refs: number;
  /** Still reachable by path (not evicted or invalidated). */
  attached: boolean;
  /** Its size counts against the cache's limit. */
  charged: boolean;
}

export type CacheAcquireResult =
  | { entry: CacheEntry; hit: boolean }
  /** Not cacheable now: no room left by referenced entries, or the file is not the version asked for. */
  | { entry: null; reason: 'cache-full' | 'file-changed' };

/**
 * Whole hot files in memory, keyed by path and validated by stat (size, mtime, inode, device).
 * LRU eviction, but an entry referenced by a send not yet released is never evicted or freed:
 * the kernel may still be reading it. Charged bytes (ready, loading, and invalidated entries
 * still referenced) never exceed `limitBytes`.
 */
/** Registers cached buffers with the ring (the Sender) so SEND_ZC pins them once, not per send. */
export interface BufferRegistrar {
  registerBuffer(buf: Uint8Array): number;
  unregisterBuffer(slot: number): void;
}

export class FileCache {
  /** Map order is LRU order: the first entry is the least recently used. */
  private readonly entries = new Map<string, CacheEntry>();
  private charged = 0;
  /** Charged bytes that cannot be evicted now: loading or referenced entries. */
  private busy = 0;
  private readonly counts = { hits: 0, misses: 0, loads: 0, evictions: 0, invalidations: 0 };

  constructor(
    readonly limitBytes: number,
    private readonly registrar: BufferRegistrar | null = null,
  ) {}

  /** Whether this exact version is cached and ready. */
  has(file: FileRef): boolean {
    const entry = this.entries.get(file.path);
    return entry !== undefined && entry.loading === null && entry.buffer !== null && sameVersion(entry.version, file.stat);
  }

  /**
   * An entry holding this version, referenced for the caller (call `release` once the send using
   * it is released), reading the file in on a miss. Rejects only when the file cannot be read.
   */
  async acquire(file: FileRef): Promise<CacheAcquireResult> {
    const existing = this.entries.get(file.path);
    if (existing) {
      if (sameVersion(existing.version, file.stat)) {
        if (existing.loading === null && existing.buffer) {
          this.counts.hits++;
          this.ref(existing);
          this.entries.delete(existing.path);
          this.entries.set(existing.path, existing);
          return { entry: existing, hit: true };
        }
        if (existing.loading) {
          this.counts.misses++;
          await existing.loading;
          // The load may have found another version on disk; then the buffer is null.
          if (!existing.buffer) return { entry: null, reason: 'file-changed' };
          this.ref(existing);
          return { entry: existing, hit: false };
        }
      }
      this.invalidate(existing);
    }
    this.counts.misses++;
    const size = file.stat.size;
    if (!this.makeRoom(size)) return { entry: null, reason: 'cache-full' };
    const entry: CacheEntry = { path: file.path, version: copyVersion(file.stat), size, buffer: null, slot: -1, loading: null, refs: 1, attached: true, charged: true };
    this.entries.set(entry.path, entry);
    this.charged += size;
    this.busy += size;
    entry.loading = this.load(entry, file);
    await entry.loading;
    if (!entry.buffer) return { entry: null, reason: 'file-changed' };
    return { entry, hit: false };
  }

  release(entry: CacheEntry): void {
    if (entry.refs <= 0) return;
    entry.refs--;
    if (entry.refs > 0) return;
    this.busy -= entry.size;
    if (!entry.attached) this.uncharge(entry);
  }

  /** Drops every entry no send references (all of them once sends are released). */
  clear(): void {
    for (const entry of this.entries.values()) if (entry.refs === 0 && entry.loading === null) this.detach(entry);
  }

  stats(): { bytes: number; limitBytes: number; entries: number; busyBytes: number } & FileCache['counts'] {
    return { bytes: this.charged, limitBytes: this.limitBytes, entries: this.entries.size, busyBytes: this.busy, ...this.counts };
  }

  private async load(entry: CacheEntry, file: FileRef): Promise<void> {
    this.counts.loads++;
    const opened = file.fd === undefined;
    let fd = file.fd ?? -1;
    let buffer: Buffer | null = Buffer.allocUnsafeSlow(entry.size);
    try {
      if (opened) fd = await openForRead(file.path);
      const n = await readAt(fd, buffer, entry.size, 0, file.path);
      // Checked after the read: a write during it changes mtime, so torn bytes are never cached.
      const now = await fstat(fd, file.path);
      if (n !== entry.size || !sameVersion(now, entry.version)) buffer = null;
    } catch (err) {
      buffer = null;
      throw err;
    } finally {
      if (opened && fd >= 0) await closeQuietly(fd);
      entry.loading = null;
      if (buffer) {
        entry.buffer = buffer;
        entry.slot = this.registrar?.registerBuffer(buffer) ?? -1;
      } else {
        // Nobody can hold a reference to a failed load but its initiator.
        this.detach(entry);
        entry.refs = 0;
        this.busy -= entry.size;
        this.uncharge(entry);
      }
    }
  }

  /** Frees room for `size` bytes by evicting unreferenced entries, oldest first; false if impossible. */
  private makeRoom(size: number): boolean {
    if (size > this.limitBytes - this.busy) return false;
    for (const entry of this.entries.values()) {
      if (this.charged + size <= this.limitBytes) break;
      if (entry.refs === 0 && entry.loading === null) {
        this.counts.evictions++;
        this.detach(entry);
      }
    }
    return this.charged + size <= this.limitBytes;
  }

  private invalidate(entry: CacheEntry): void {
    this.counts.invalidations++;
    this.detach(entry);
  }

  /** Makes the entry unreachable; its memory goes now, or when its last send is released. */
  private detach(entry: CacheEntry): void {
    if (entry.attached && this.entries.get(entry.path) === entry) this.entries.delete(entry.path);
    entry.attached = false;
    if (entry.refs === 0) this.uncharge(entry);
  }

  private uncharge(entry: CacheEntry): void {
    if (!entry.charged) return;
    entry.charged = false;
    this.charged -= entry.size;
    entry.buffer = null;
    // No send references the entry any more; the kernel would keep a replaced buffer alive anyway.
    if (entry.slot >= 0) this.registrar?.unregisterBuffer(entry.slot);
    entry.slot = -1;
  }

  private ref(entry: CacheEntry): void {
    if (entry.refs === 0) this.busy += entry.size;
    entry.refs++;
  }
}

function copyVersion(stat: FileVersion): FileVersion {
  return { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, dev: stat.dev };
}
