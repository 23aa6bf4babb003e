import type { Sender } from '../sender.js';
import type { FileEngineName, FileSenderOptions } from './types.js';
import { intInRange, invalidOption } from '../options.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const DEFAULT_CACHE_BYTES = 256 * MiB;
export const DEFAULT_CACHE_MAX_FILE_BYTES = 64 * MiB;
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 64 * MiB;
/** Copy-engine read size; 1 MiB measured best on loopback here (see the package README). */
export const DEFAULT_FILE_CHUNK_SIZE = 1 * MiB;
/** A registered (fixed) buffer holds at most 1 GiB, and a cached file is meant to become one. */
export const MAX_CACHED_FILE_BYTES = 1 * GiB;
/**
 * `auto` sends files at least this large by splice (where it can run). Measured on loopback with
 * 16 keep-alive connections (MB per server CPU-second, see the package README): the cache wins at
 * 64-128 KiB, the two are even at 256 KiB, splice wins at 1-4 MiB and needs no cache memory.
 */
export const DEFAULT_SPLICE_MIN_BYTES = 256 * KiB;
const MIN_CHUNK_SIZE = 64 * KiB;
const MAX_CHUNK_SIZE = 64 * MiB;

export interface ResolvedFileSenderOptions {
  engine: 'auto' | FileEngineName;
  cacheBytes: number;
  /** Already capped at cacheBytes. */
  cacheMaxFileBytes: number;
  maxInFlightBytes: number;
  chunkSize: number;
  spliceMinBytes: number;
  sender: Sender | null;
}

export function resolveFileSenderOptions(options: FileSenderOptions = {}): ResolvedFileSenderOptions {
  if (typeof options !== 'object' || options === null) invalidOption('options must be an object');
  const known = new Set(['engine', 'cacheBytes', 'cacheMaxFileBytes', 'maxInFlightBytes', 'chunkSize', 'spliceMinBytes', 'sender']);
  for (const key of Object.keys(options)) if (!known.has(key)) invalidOption(`unknown option ${key}`);

  const engine = options.engine ?? 'auto';
  if (!['auto', 'zc-cache', 'splice', 'sendfile', 'copy'].includes(engine)) invalidOption(`option engine must be 'auto', 'zc-cache', 'splice', 'sendfile' or 'copy'`);

  const cacheBytes = intInRange('cacheBytes', options.cacheBytes ?? DEFAULT_CACHE_BYTES, 0, Number.MAX_SAFE_INTEGER);
  const cacheMaxFileBytes = intInRange('cacheMaxFileBytes', options.cacheMaxFileBytes ?? DEFAULT_CACHE_MAX_FILE_BYTES, 0, MAX_CACHED_FILE_BYTES);
  const maxInFlightBytes = intInRange('maxInFlightBytes', options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES, 2 * MIN_CHUNK_SIZE, Number.MAX_SAFE_INTEGER);

  // Double buffering needs two chunks per response inside the budget.
  let chunkSize: number;
  if (options.chunkSize === undefined) {
    chunkSize = Math.min(DEFAULT_FILE_CHUNK_SIZE, Math.floor(maxInFlightBytes / 2 / (4 * KiB)) * 4 * KiB);
  } else {
    chunkSize = intInRange('chunkSize', options.chunkSize, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE);
    if (chunkSize * 2 > maxInFlightBytes) invalidOption(`option chunkSize (${chunkSize}) must be at most half of maxInFlightBytes (${maxInFlightBytes})`);
  }

  const spliceMinBytes = intInRange('spliceMinBytes', options.spliceMinBytes ?? DEFAULT_SPLICE_MIN_BYTES, 0, Number.MAX_SAFE_INTEGER);

  const sender = options.sender ?? null;
  if (sender !== null && (typeof sender !== 'object' || typeof (sender as { send?: unknown }).send !== 'function')) {
    invalidOption('option sender must be a Sender');
  }

  return { engine, cacheBytes, cacheMaxFileBytes: Math.min(cacheMaxFileBytes, cacheBytes), maxInFlightBytes, chunkSize, spliceMinBytes, sender };
}
