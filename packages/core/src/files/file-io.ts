import * as fs from 'node:fs';
import { ZcSendError } from '../errors.js';
import type { FileRef, FileVersion } from './types.js';

/**
 * A file that cannot be read is a failed body send: the headers are already out, so the caller
 * must destroy the connection. `syscall` tells it apart from a socket failure.
 */
export function fileError(err: unknown, syscall: string, path: string): ZcSendError {
  const e = err as NodeJS.ErrnoException;
  const errno = typeof e?.errno === 'number' ? Math.abs(e.errno) : undefined;
  return new ZcSendError('ZCSEND_ERR_SEND_FAILED', `${syscall} ${path} failed: ${e?.message ?? String(err)}`, { cause: err, errno, syscall });
}

export function fileTruncated(path: string, position: number): ZcSendError {
  return new ZcSendError('ZCSEND_ERR_SEND_FAILED', `${path} ended at byte ${position}, before the range the caller asked for`, {
    syscall: 'read',
  });
}

export function sameVersion(a: FileVersion, b: FileVersion): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.dev === b.dev;
}

/**
 * The path names another version than the caller's stat (replaced by a rename, or rewritten):
 * its bytes must not go out under headers (length, ETag) made from that stat.
 */
export function fileChanged(path: string): ZcSendError {
  return new ZcSendError('ZCSEND_ERR_FILE_CHANGED', `${path} is no longer the version the caller stat'ed (size, mtime or inode changed)`, {
    syscall: 'fstat',
  });
}

/**
 * Opens `file.path` and checks with fstat that it is still `file.stat`'s version (else closes it
 * and throws fileChanged). Public as `openFileVersion`: a caller that reads the fd it returns
 * sends exactly the version its headers describe.
 */
export async function openVersion(file: FileRef): Promise<number> {
  const fd = await openForRead(file.path);
  let now: fs.Stats;
  try {
    now = await fstat(fd, file.path);
  } catch (err) {
    await closeQuietly(fd);
    throw err;
  }
  if (sameVersion(now, file.stat)) return fd;
  await closeQuietly(fd);
  throw fileChanged(file.path);
}

/** openVersion in one synchronous step, for an engine that opens hot files without the threadpool. */
export function openVersionSync(file: FileRef): number {
  let fd: number;
  try {
    fd = fs.openSync(file.path, 'r');
  } catch (err) {
    throw fileError(err, 'open', file.path);
  }
  let now: fs.Stats;
  try {
    now = fs.fstatSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    throw fileError(err, 'fstat', file.path);
  }
  if (sameVersion(now, file.stat)) return fd;
  fs.closeSync(fd);
  throw fileChanged(file.path);
}

export function openForRead(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.open(path, 'r', (err, fd) => (err ? reject(fileError(err, 'open', path)) : resolve(fd)));
  });
}

/**
 * close(2) at once, for a file opened for reading once nothing uses it: there is nothing to
 * flush, and a threadpool round trip (and the event-loop wake-up after it) costs more.
 */
export function closeNow(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Linux releases the descriptor even when close reports an error.
  }
}

export function closeQuietly(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

export function fstat(fd: number, path: string): Promise<fs.Stats> {
  return new Promise((resolve, reject) => {
    fs.fstat(fd, (err, stat) => (err ? reject(fileError(err, 'fstat', path)) : resolve(stat)));
  });
}

/** fs.read caps one call at 2 GiB - 1 and the kernel at 0x7ffff000 bytes. */
const MAX_READ = 0x7ffff000;

/**
 * Reads `length` bytes at `position` (a JS number, so offsets past 4 GiB work) into `buf` from 0,
 * looping on short reads. Returns the bytes read: fewer than `length` only at end of file.
 */
export function readAt(fd: number, buf: Uint8Array, length: number, position: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const step = (): void => {
      fs.read(fd, buf, done, Math.min(length - done, MAX_READ), position + done, (err, n) => {
        if (err) return reject(fileError(err, 'read', path));
        done += n;
        if (n === 0 || done >= length) resolve(done);
        else step();
      });
    };
    step();
  });
}
