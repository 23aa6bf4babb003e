// Telling a slow peer from a stalled one when a socket times out, by the kernel's own count.
//
// Node's idle timer only sees a ring send when an op completes (up to 4 MiB per SEND_ZC op, or a
// whole response the kernel still holds), so a client reading slowly but steadily can look idle
// for longer than the timeout. The count that tells them apart is the bytes the peer has
// acknowledged (tcp_info tcpi_bytes_acked): it only grows, and only when the peer takes data.
// The unacknowledged queue (SIOCOUTQ) does not: while an op keeps feeding the socket it stays
// near full, going up as often as down, however fast the peer reads.
import type * as net from 'node:net';
import { load } from '@zcsend/native';
import { ZcSendError } from './errors.js';
import { currentFd, refreshIdleTimer } from './sockets.js';

/** Default for `minProgressBytes`: what a peer must take per timeout period to keep its connection. */
export const DEFAULT_MIN_PROGRESS_BYTES = 64 * 1024;

/**
 * What a timed-out connection gets:
 * - `watching`: first look at it; its count is noted, its timer re-armed, and the next timeout judges it;
 * - `progressing`: the peer acknowledged at least `minProgressBytes` since the last look; timer re-armed;
 * - `stalled`: it did not; the caller cuts the connection;
 * - `unknown`: no kernel count (not TCP, no native addon, fd gone) or the check is off; the caller cuts it.
 */
export type TimeoutVerdict = 'watching' | 'progressing' | 'stalled' | 'unknown';

export type StallCheckStats = Record<TimeoutVerdict, number>;

export interface StallCheckOptions {
  /**
   * Bytes the peer must acknowledge between two timeouts to keep the connection. Bounds how slowly a
   * client may drain (a client trickling less than this per period is cut at its second timeout).
   * 0 turns the check off: every timeout is `unknown`. Default 64 KiB.
   */
  minProgressBytes?: number;
  /** Where the acknowledged-bytes count comes from (tests); default the kernel's, via the native addon. */
  bytesAcked?: (socket: net.Socket) => number | null;
}

/**
 * Payload bytes the TCP peer of `socket` has acknowledged so far, or null when unknown (no native
 * addon, not a TCP socket, socket closed). A synchronous getsockopt on the fd the socket holds now.
 */
export function tcpBytesAcked(socket: net.Socket): number | null {
  const fd = currentFd(socket);
  if (fd < 0) return null;
  const binding = load().binding as { tcpBytesAcked?: (fd: number) => number } | null;
  if (typeof binding?.tcpBytesAcked !== 'function') return null;
  const acked = binding.tcpBytesAcked(fd);
  return acked >= 0 ? acked : null;
}

/**
 * Judges timed-out connections the adapter would otherwise cut because the kernel still holds data
 * for them. Each connection is judged between two timeouts, so a stalled one is cut at its second
 * timeout at the latest (its first only notes the count); one that keeps taking at least
 * `minProgressBytes` per period is kept however long its body.
 */
export class StallCheck {
  readonly minProgressBytes: number;
  private readonly bytesAcked: (socket: net.Socket) => number | null;
  private readonly lastSeen = new WeakMap<net.Socket, number>();
  private readonly counts: StallCheckStats = { watching: 0, progressing: 0, stalled: 0, unknown: 0 };

  constructor(options: StallCheckOptions = {}) {
    const min = options.minProgressBytes ?? DEFAULT_MIN_PROGRESS_BYTES;
    if (!Number.isSafeInteger(min) || min < 0) {
      throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', `option minProgressBytes must be a non-negative integer, got ${String(min)}`);
    }
    if (options.bytesAcked !== undefined && typeof options.bytesAcked !== 'function') {
      throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', 'option bytesAcked must be a function');
    }
    this.minProgressBytes = min;
    this.bytesAcked = options.bytesAcked ?? tcpBytesAcked;
  }

  /** Call from the socket's timeout handler. Re-arms the socket's idle timer when it keeps the connection. */
  onTimeout(socket: net.Socket): TimeoutVerdict {
    const verdict = this.judge(socket);
    this.counts[verdict]++;
    if (verdict === 'watching' || verdict === 'progressing') refreshIdleTimer(socket);
    return verdict;
  }

  stats(): StallCheckStats {
    return { ...this.counts };
  }

  private judge(socket: net.Socket): TimeoutVerdict {
    if (this.minProgressBytes === 0) return 'unknown';
    const acked = this.bytesAcked(socket);
    if (acked === null) return 'unknown';
    const before = this.lastSeen.get(socket);
    if (before !== undefined && acked - before < this.minProgressBytes) {
      this.lastSeen.delete(socket);
      return 'stalled';
    }
    this.lastSeen.set(socket, acked);
    return before === undefined ? 'watching' : 'progressing';
  }
}

/** True for the verdicts that keep the connection. */
export function keepsConnection(verdict: TimeoutVerdict): boolean {
  return verdict === 'watching' || verdict === 'progressing';
}
