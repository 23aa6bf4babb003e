import * as fs from 'node:fs';

/**
 * close(2) at once, for a file opened for reading once nothing reads it any more: there is
 * nothing to flush, and a threadpool round trip per response costs more than the call.
 */
export function closeFile(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // close may report EIO or EINTR; Linux releases the descriptor either way.
  }
}
