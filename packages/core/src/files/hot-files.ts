import * as os from 'node:os';
import type { FileRef } from './types.js';

/**
 * Remembers the file versions whose whole body was just sent, by any engine: their pages were
 * read into the page cache moments ago, so a synchronous sendfile of them will most likely not
 * wait for the disk (a miss would block the event loop for the read). A guess, not a check: the
 * bound keeps it honest, at a share of the machine's memory that the page cache can normally
 * hold, most recently sent first; the oldest versions are forgotten first.
 */
export class HotFiles {
  /** path -> version key and size, in least-recently-sent order. */
  private readonly files = new Map<string, { version: string; size: number }>();
  private bytes = 0;

  constructor(
    readonly maxBytes: number = defaultHotBytes(),
    private readonly maxPaths = 4096,
  ) {}

  /** True when this version of the file was sent whole recently (and is still remembered). */
  isHot(file: FileRef): boolean {
    const known = this.files.get(file.path);
    return known !== undefined && known.version === versionKey(file);
  }

  /** Records that the whole body of this version just went out. */
  sentWhole(file: FileRef): void {
    const size = file.stat.size;
    this.forget(file.path);
    if (size > this.maxBytes) return;
    this.files.set(file.path, { version: versionKey(file), size });
    this.bytes += size;
    while (this.bytes > this.maxBytes || this.files.size > this.maxPaths) this.forget(this.files.keys().next().value!);
  }

  get size(): number {
    return this.files.size;
  }

  private forget(path: string): void {
    const known = this.files.get(path);
    if (!known) return;
    this.files.delete(path);
    this.bytes -= known.size;
  }
}

function versionKey(file: FileRef): string {
  const { size, mtimeMs, ino, dev } = file.stat;
  return `${size}:${mtimeMs}:${ino}:${dev}`;
}

/**
 * A quarter of the memory this process may use (the machine's, or a cgroup limit's when lower):
 * a working set the page cache keeps unless memory is tight.
 */
function defaultHotBytes(): number {
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  const total = os.totalmem();
  const memory = constrained && constrained > 0 && constrained < total ? constrained : total;
  return Math.floor(memory / 4);
}
