import { constants as osConstants } from 'node:os';

const { EBUSY, EBADF } = osConstants.errno;

/** The fd helpers of @zcsend/native the pool needs (a seam for tests). */
export interface PipeSyscalls {
  /** [readFd, writeFd] or -errno. */
  pipe2(flags: number): [number, number] | number;
  /** F_SETPIPE_SZ: the size granted (at least `size`) or -errno. */
  setPipeSize(fd: number, size: number): number;
  closeFd(fd: number): number;
}

export interface Pipe {
  readonly readFd: number;
  readonly writeFd: number;
  /** Bytes it holds when full: what F_SETPIPE_SZ granted. */
  readonly capacity: number;
}

export interface PipePoolOptions {
  /** Size asked with F_SETPIPE_SZ; smaller sizes are tried when the kernel refuses (pipe-max-size, per-user limits). */
  pipeSize: number;
  /** Pipes open at once (in use + idle); past it `acquire` says EBUSY. */
  maxPipes: number;
  /** Idle pipes kept for reuse; the rest are closed when given back. */
  maxIdle: number;
}

const MIN_PIPE_SIZE = 4096;

/**
 * Pipes for splice chains (file -> pipe -> socket), pooled so a response does not pay pipe2 and
 * F_SETPIPE_SZ. A pipe goes back to the pool only when known empty: one whose chain failed may
 * hold stale bytes that would prefix the next response, so it is closed instead.
 */
export class PipePool {
  private readonly idle: Pipe[] = [];
  private openCount = 0;
  private closed = false;

  constructor(
    private readonly sys: PipeSyscalls,
    private readonly options: PipePoolOptions,
  ) {}

  /** A pipe of this pool, or -errno (-EBUSY when maxPipes are open, -EBADF once closed). */
  acquire(): Pipe | number {
    if (this.closed) return -EBADF;
    const reused = this.idle.pop();
    if (reused) return reused;
    if (this.openCount >= this.options.maxPipes) return -EBUSY;
    const fds = this.sys.pipe2(0);
    if (typeof fds === 'number') return fds;
    const [readFd, writeFd] = fds;
    const capacity = this.grow(writeFd);
    if (capacity < 0) {
      this.sys.closeFd(readFd);
      this.sys.closeFd(writeFd);
      return capacity;
    }
    this.openCount++;
    return { readFd, writeFd, capacity };
  }

  /** Returns a pipe: kept when `empty` and there is room, else closed. */
  release(pipe: Pipe, empty: boolean): void {
    if (empty && !this.closed && this.idle.length < this.options.maxIdle) {
      this.idle.push(pipe);
      return;
    }
    this.destroy(pipe);
  }

  /** Closes the idle pipes; pipes in use are closed as they come back. Idempotent. */
  close(): void {
    this.closed = true;
    for (const pipe of this.idle.splice(0)) this.destroy(pipe);
  }

  stats(): { open: number; idle: number } {
    return { open: this.openCount, idle: this.idle.length };
  }

  private destroy(pipe: Pipe): void {
    this.sys.closeFd(pipe.readFd);
    this.sys.closeFd(pipe.writeFd);
    this.openCount--;
  }

  /** Asks for pipeSize, then smaller sizes: the capacity granted, or -errno. */
  private grow(fd: number): number {
    let last = 0;
    for (let size = this.options.pipeSize; size >= MIN_PIPE_SIZE; size = Math.floor(size / 4)) {
      const granted = this.sys.setPipeSize(fd, size);
      if (granted >= MIN_PIPE_SIZE) return granted;
      last = granted;
    }
    return last < 0 ? last : -EBUSY;
  }
}
