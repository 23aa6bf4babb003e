import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

/**
 * Writes `path` back, then advises the kernel to drop its pages (GNU dd's nocache is
 * posix_fadvise DONTNEED) until `evicted()` says they are gone. The advice skips pages the kernel
 * holds for a moment (per-CPU batches, skbs of an earlier send not yet freed), so it is given up
 * to 20 times, 50 ms apart. False when the pages stay: tmpfs keeps them whatever the advice.
 */
export function evictFromPageCache(path: string, evicted: () => boolean): boolean {
  const fd = fs.openSync(path, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    if (attempt > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
    if (evicted()) return true;
  }
  return false;
}
