import { constants as osConstants } from 'node:os';
import type { Sender } from '@zcsend/core';
import type { ReplyTracker } from './reply-stats.js';
import type { FileBodySender } from './file-body.js';
import type { HeldConnections } from './held-connections.js';

/** State one plugin registration shares between its hooks. */
export interface PluginContext {
  readonly sender: Sender;
  /** Null when `files: false`. */
  readonly files: FileBodySender | null;
  readonly threshold: number;
  readonly tracker: ReplyTracker;
  /** Connections whose bodies went through the Sender (reset when a stalled client pins buffers). */
  readonly held: HeldConnections;
  /** Set by onClose: no new sends start. */
  closing: boolean;
}

const PEER_ERRNOS = new Set([osConstants.errno.ECONNRESET, osConstants.errno.EPIPE, osConstants.errno.ECONNABORTED, osConstants.errno.ETIMEDOUT]);

/** True when a failed send only means the client went away (not worth a warning). */
export function isClientGone(err: unknown): boolean {
  const e = err as { code?: string; errno?: number } | null;
  if (!e) return false;
  if (e.code === 'ZCSEND_ERR_SOCKET_CLOSED' || e.code === 'ZCSEND_ERR_CANCELLED') return true;
  // Core reports the kernel's positive errno; Node's own errors carry a code.
  if (e.code === 'ZCSEND_ERR_SEND_FAILED') {
    if (e.errno !== undefined && PEER_ERRNOS.has(e.errno)) return true;
    return isClientGone((err as { cause?: unknown }).cause);
  }
  return e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'ERR_STREAM_PREMATURE_CLOSE' || e.code === 'ERR_STREAM_DESTROYED';
}
