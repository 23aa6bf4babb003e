import type { SenderOptions, Sender } from '@zcsend/core';
import { FST_ZC_INVALID_OPTION } from './errors.js';

/**
 * Replies smaller than this keep Fastify's own write path. Chosen by measurement
 * (bench/threshold.mjs, README "Threshold"): below it the extra header write and the ring
 * round trip cost more than they save.
 */
export const DEFAULT_REPLY_THRESHOLD = 64 << 10;

/** File-engine options passed through to core's FileSender (see @zcsend/core). */
export interface ZcSendFileOptions {
  /** 'auto' (default) picks per response; a name forces that engine where it is available. */
  engine?: 'auto' | 'zc-cache' | 'splice' | 'sendfile' | 'copy';
  /** Byte bound of the hot-file cache. 0 disables it. */
  cacheBytes?: number;
  /** Files larger than this are never cached. */
  cacheMaxFileBytes?: number;
  /** Bytes of read buffers in flight across file responses (backpressure). */
  maxInFlightBytes?: number;
  /** Bytes per read in the copy engine. */
  chunkSize?: number;
}

export interface ZcSendOptions {
  /** Bodies (Buffer, Uint8Array, string, file range) smaller than this are left to Fastify. Default 64 KiB. */
  threshold?: number;
  /** Core Sender option (default true): loopback peers and peers the kernel copies for get plain ring sends. */
  adaptive?: boolean;
  /** Core Sender option: bytes per ring op. */
  chunkSize?: number;
  /** Core Sender option: ring submission-queue entries. */
  entries?: number;
  /** Core Sender option: 'auto' | 'io_uring' (unusable ring → registration error) | 'copy'. */
  backend?: 'auto' | 'io_uring' | 'copy';
  /** Core Sender option: the ring backend seam (tests, fault injection). */
  ring?: SenderOptions['ring'];
  /** Send through this Sender instead of creating one. The plugin never closes it. */
  sender?: Sender;
  /**
   * Serve `fs.ReadStream` payloads that carry a `path` (what `@fastify/static` sends) from the
   * file through core's file engines. `false` leaves them to Fastify. Default true.
   */
  files?: boolean | ZcSendFileOptions;
  /**
   * On a socket timeout, a connection whose body is still in progress or held by the kernel is
   * kept while its peer acknowledges at least this many bytes per timeout period (the kernel's
   * count), so slow but steady readers are not cut; a stalled one is reset at its second timeout
   * at the latest. 0: every such timeout resets. Default 64 KiB.
   */
  minProgressBytes?: number;
}

export interface ResolvedOptions {
  threshold: number;
  /** Options for a plugin-owned Sender, or null to share the thread's `getSender()`. */
  senderOptions: SenderOptions | null;
  sender: Sender | null;
  files: ZcSendFileOptions | null;
  minProgressBytes: number | undefined;
}

const SENDER_KEYS = ['adaptive', 'chunkSize', 'entries', 'backend', 'ring'] as const;
const FILE_KEYS = new Set(['engine', 'cacheBytes', 'cacheMaxFileBytes', 'maxInFlightBytes', 'chunkSize']);
/** Keys Fastify itself reads from `register(plugin, opts)`: tolerated, not ours. */
const FASTIFY_REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers']);
const KNOWN_KEYS = new Set<string>(['threshold', 'sender', 'files', 'minProgressBytes', ...SENDER_KEYS]);

function invalid(message: string): never {
  throw new FST_ZC_INVALID_OPTION(message);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks the shape of the options. Values of Sender and FileSender options are checked by core
 * when the plugin constructs them (at registration too), and their errors are rethrown as
 * FST_ZC_INVALID_OPTION.
 */
export function resolveOptions(options: unknown): ResolvedOptions {
  const opts = options ?? {};
  if (!isPlainObject(opts)) invalid('options must be an object');
  for (const key of Object.keys(opts)) {
    if (!KNOWN_KEYS.has(key) && !FASTIFY_REGISTER_KEYS.has(key)) invalid(`unknown option ${key}`);
  }

  const threshold = opts.threshold ?? DEFAULT_REPLY_THRESHOLD;
  if (typeof threshold !== 'number' || !Number.isSafeInteger(threshold) || threshold < 0) {
    invalid(`option threshold must be a non-negative integer, got ${String(threshold)}`);
  }

  let senderOptions: SenderOptions | null = null;
  for (const key of SENDER_KEYS) {
    if (opts[key] !== undefined) (senderOptions ??= {})[key] = opts[key] as never;
  }

  const sender = opts.sender ?? null;
  if (sender !== null) {
    if (!isPlainObject(sender) || typeof (sender as { send?: unknown }).send !== 'function') {
      invalid('option sender must be a Sender from @zcsend/core');
    }
    if (senderOptions) invalid(`option sender cannot be combined with Sender options (${Object.keys(senderOptions).join(', ')})`);
  }

  const files = opts.files ?? true;
  let fileOptions: ZcSendFileOptions | null;
  if (files === false) fileOptions = null;
  else if (files === true) fileOptions = {};
  else if (isPlainObject(files)) {
    for (const key of Object.keys(files)) if (!FILE_KEYS.has(key)) invalid(`unknown option files.${key}`);
    fileOptions = { ...files } as ZcSendFileOptions;
  } else invalid('option files must be a boolean or an object');

  const minProgressBytes = opts.minProgressBytes;
  if (minProgressBytes !== undefined && (typeof minProgressBytes !== 'number' || !Number.isSafeInteger(minProgressBytes) || minProgressBytes < 0)) {
    invalid(`option minProgressBytes must be a non-negative integer, got ${String(minProgressBytes)}`);
  }

  return { threshold, senderOptions, sender: sender as Sender | null, files: fileOptions, minProgressBytes };
}
