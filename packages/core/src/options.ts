import { readFileSync } from 'node:fs';
import type { RingBackendFactory } from './backend.js';
import { ZcSendError } from './errors.js';

export interface SenderOptions {
  /**
   * Switch a socket to plain sends once the kernel reports it copied zero-copy data, and start
   * loopback peers (and peers already seen copying) with plain sends. Default true;
   * `ZCSEND_ADAPTIVE=0` makes the default false.
   */
  adaptive?: boolean;
  /** Bytes per ring op; larger bodies go out as several ops in order. Default 4 MiB where RLIMIT_MEMLOCK does not apply (root, unlimited), else 1 MiB. */
  chunkSize?: number;
  /** Bodies smaller than this go through libuv (`socket.write`). Default 16 KiB. */
  threshold?: number;
  /** Ring submission-queue entries. Default 256. */
  entries?: number;
  /**
   * 'auto' (default) uses io_uring when usable, else the copy backend; 'io_uring' makes an
   * unusable ring a construction error; 'copy' never opens a ring. `ZCSEND_DISABLE=1` and
   * `ZCSEND_REQUIRE_URING=1` set the default.
   */
  backend?: 'auto' | 'io_uring' | 'copy';
  /** Backend seam: open this ring instead of the native one (tests, fault injection). */
  ring?: RingBackendFactory;
}

export interface ResolvedSenderOptions {
  adaptive: boolean;
  chunkSize: number;
  threshold: number;
  entries: number;
  backend: 'auto' | 'io_uring' | 'copy';
  ring: RingBackendFactory | null;
}

/**
 * Measured here (loopback, 1 GiB per run, sender pinned to one core): sender CPU per byte falls
 * steeply up to 1 MiB chunks and by another 15-25% up to 4 MiB, flat beyond. But every SEND_ZC
 * chunk in flight is charged to RLIMIT_MEMLOCK for non-root users (8 MiB by default; -ENOMEM
 * past it), so big chunks only where that limit does not bite.
 */
export const DEFAULT_CHUNK_SIZE = 1 << 20;
export const LARGE_CHUNK_SIZE = 4 << 20;

function defaultChunkSize(): number {
  if (process.getuid?.() === 0) return LARGE_CHUNK_SIZE;
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const line = /^Max locked memory\s+(\S+)/m.exec(limits);
    if (line?.[1] === 'unlimited') return LARGE_CHUNK_SIZE;
  } catch {
    // not Linux, or /proc unavailable: keep the conservative size
  }
  return DEFAULT_CHUNK_SIZE;
}
export const DEFAULT_THRESHOLD = 16 << 10;
export const DEFAULT_ENTRIES = 256;

export function invalidOption(message: string): never {
  throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', message);
}

export function intInRange(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalidOption(`option ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

export function resolveSenderOptions(options: SenderOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedSenderOptions {
  if (typeof options !== 'object' || options === null) invalidOption('options must be an object');
  const known = new Set(['adaptive', 'chunkSize', 'threshold', 'entries', 'backend', 'ring']);
  for (const key of Object.keys(options)) if (!known.has(key)) invalidOption(`unknown option ${key}`);

  const adaptive = options.adaptive ?? env.ZCSEND_ADAPTIVE !== '0';
  if (typeof adaptive !== 'boolean') invalidOption('option adaptive must be a boolean');

  // ZCSEND_DISABLE=1 wins over the options: it is how operators turn io_uring off in production.
  // An injected ring (the test and fault-injection seam) is used as given, whatever the environment.
  const envBackend = env.ZCSEND_DISABLE === '1' ? 'copy' : env.ZCSEND_REQUIRE_URING === '1' ? 'io_uring' : 'auto';
  const asked = options.backend;
  if (asked !== undefined && asked !== 'auto' && asked !== 'io_uring' && asked !== 'copy') {
    invalidOption(`option backend must be 'auto', 'io_uring' or 'copy', got ${String(asked)}`);
  }
  const backend = options.ring ? (asked ?? 'auto') : env.ZCSEND_DISABLE === '1' ? 'copy' : (asked ?? envBackend);

  const entries = intInRange('entries', options.entries ?? DEFAULT_ENTRIES, 8, 32768);
  if ((entries & (entries - 1)) !== 0) invalidOption(`option entries must be a power of two, got ${entries}`);

  if (options.ring !== undefined && typeof options.ring !== 'function') invalidOption('option ring must be a function');

  return {
    adaptive,
    chunkSize: intInRange('chunkSize', options.chunkSize ?? defaultChunkSize(), 4096, 1 << 30),
    threshold: intInRange('threshold', options.threshold ?? DEFAULT_THRESHOLD, 0, Number.MAX_SAFE_INTEGER),
    entries,
    backend,
    ring: options.ring ?? null,
  };
}
