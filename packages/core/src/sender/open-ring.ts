import { openNativeRing, type CompletionHandler, type RingBackend } from '../backend.js';
import { ZcSendError } from '../errors.js';
import type { ResolvedSenderOptions } from '../options.js';

/**
 * Opens the ring the options ask for, or says why there is none (the copy backend then runs).
 * Throws only when io_uring is required and cannot be had.
 */
export function openRing(
  options: ResolvedSenderOptions,
  onCompletions: CompletionHandler,
): { ring: RingBackend | null; reason: string | null } {
  let ring: RingBackend | null = null;
  let reason: string | null = null;
  if (options.backend === 'copy') {
    reason = process.env.ZCSEND_DISABLE === '1' ? 'disabled by ZCSEND_DISABLE=1' : "disabled by option backend: 'copy'";
  } else if (options.ring) {
    try {
      ring = options.ring(onCompletions);
    } catch (err) {
      reason = `ring backend failed to open: ${(err as Error).message}`;
    }
  } else {
    const opened = openNativeRing(onCompletions, options.entries);
    ring = opened.ring;
    reason = opened.reason;
  }
  if (!ring && options.backend === 'io_uring') {
    throw new ZcSendError('ZCSEND_ERR_URING_UNAVAILABLE', `io_uring is required but unavailable: ${reason}`);
  }
  return { ring, reason };
}
