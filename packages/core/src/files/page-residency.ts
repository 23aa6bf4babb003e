import { constants as osConstants } from 'node:os';
import { load } from '@zcsend/native';

const { ENOSYS } = osConstants.errno;

/** uncachedPages(fd, offset, length): pages of the range not in the page cache, or -errno. */
export type UncachedPagesSyscall = (fd: number, offset: number, length: number) => number;

/**
 * Whether a file range is in the page cache right now (cachestat(2), Linux 6.5), so that a
 * synchronous sendfile of it will not block the event loop on the disk. A fact where HotFiles can
 * only guess, and one that holds for ranges of files never sent whole (media seeks). Unknown
 * (null) without the addon, before Linux 6.5 (remembered: not asked again), and for a file this
 * process neither owns nor may write (the kernel refuses those with EPERM).
 */
export class PageResidency {
  private syscall: UncachedPagesSyscall | null;

  constructor(syscall?: UncachedPagesSyscall | null) {
    this.syscall = syscall === undefined ? nativeUncachedPages() : syscall;
  }

  /** true: every page of [start, end) of the open file `fd` is cached; false: some are not; null: unknown. */
  resident(fd: number, start: number, end: number): boolean | null {
    if (!this.syscall || end <= start) return null;
    const missing = this.syscall(fd, start, end - start);
    if (missing >= 0) return missing === 0;
    if (missing === -ENOSYS) this.syscall = null;
    return null;
  }
}

function nativeUncachedPages(): UncachedPagesSyscall | null {
  const { binding } = load();
  if (!binding || typeof binding.uncachedPages !== 'function') return null;
  return (fd, offset, length) => binding.uncachedPages(fd, offset, length);
}
