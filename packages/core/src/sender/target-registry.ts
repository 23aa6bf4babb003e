import type * as net from 'node:net';
import type { Target } from './records.js';

/** The Sender's per-socket targets: by net.Socket, by raw fd, and the ones with work outstanding. */
export class TargetRegistry {
  readonly bySocket = new WeakMap<net.Socket, Target>();
  readonly byFd = new Map<number, Target>();
  /** Targets with sends queued, ops live or a libuv write awaited. */
  readonly busy = new Set<Target>();

  lookup(socket: net.Socket | number): Target | undefined {
    return typeof socket === 'number' ? this.byFd.get(socket) : this.bySocket.get(socket);
  }

  /** Drop a target once nothing refers to it any more (a socket's stays mapped for its verdict). */
  forgetIfIdle(target: Target): void {
    if (target.queue.length > 0 || target.liveOps > 0 || target.waitingLibuv) return;
    this.busy.delete(target);
    if (!target.socket && this.byFd.get(target.fd) === target) this.byFd.delete(target.fd);
  }
}
