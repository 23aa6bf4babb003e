import * as fs from 'node:fs';
import * as path from 'node:path';
import { ZcSendError, type Sender } from '@zcsend/core';

export type DotfilesPolicy = 'deny' | 'allow' | 'ignore';
/** `inside`: follow symlinks whose target stays under the root; `any`: follow all; `none`: refuse every symlink. */
export type SymlinkPolicy = 'inside' | 'any' | 'none';
export type EngineChoice = 'auto' | 'zc-cache' | 'splice' | 'sendfile' | 'copy';
export type Encoding = 'br' | 'gzip';

export interface StaticOptions {
  /** Index file served for a directory URL. Default 'index.html'; false disables it. */
  index?: string | false;
  /** HTML listing of directories without an index. Default false. */
  listing?: boolean;
  /** Dotfiles and dot-directories: 'deny' (403, default), 'ignore' (404) or 'allow'. */
  dotfiles?: DotfilesPolicy;
  /** Default 'inside': symlinks pointing outside the root are refused. */
  symlinks?: SymlinkPolicy;
  /** Cache-Control max-age in seconds. Default 0. */
  maxAge?: number;
  /** Adds `immutable` to Cache-Control. Default false. */
  immutable?: boolean;
  /** `Access-Control-Allow-Origin: *` (true) or the given origin, and answers to preflight requests. Default false. */
  cors?: boolean | string;
  /** Serve `file.br` / `file.gz` siblings chosen by Accept-Encoding. Default ['br', 'gzip']; false disables. */
  precompressed?: readonly Encoding[] | boolean;
  /** File engine of the core FileSender. Default 'auto'. */
  engine?: EngineChoice;
  /** Zero-copy on/off: false uses the copy backend whatever the machine offers. Default true. */
  zeroCopy?: boolean;
  /** Byte bound of the core file cache (zc-cache). Default 256 MiB. */
  cacheBytes?: number;
  /** Files above this size are never cached. Default 64 MiB (capped at cacheBytes). */
  cacheMaxFileBytes?: number;
  /** Body bytes in flight across all responses before sends wait. Default 64 MiB. */
  maxInFlightBytes?: number;
  /** Files up to this size are kept in memory and written with the headers in one write. Default 64 KiB. */
  inlineMaxBytes?: number;
  /** Memory bound for those small files. Default 16 MiB. */
  inlineCacheBytes?: number;
  /** How long a path's stat/realpath result is reused, in ms. Default 1000; 0 checks every request. */
  statCacheMs?: number;
  /** The Sender to send through. Default: this thread's shared Sender, or a copy Sender when zeroCopy is false. */
  sender?: Sender;
  /**
   * Hand the headers to Node's flat-list `writeHead` as they are (fastest), so `res.getHeader()`
   * does not see them afterwards. Default false for `serveStatic` (middleware after it, loggers
   * such as morgan, and `res.getHeader('content-length')` see every header); `createFileServer`
   * defaults to true, as it reads nothing back.
   */
  rawHeaders?: boolean;
}

export interface ResolvedStaticOptions {
  root: string;
  index: string | false;
  listing: boolean;
  dotfiles: DotfilesPolicy;
  symlinks: SymlinkPolicy;
  maxAge: number;
  immutable: boolean;
  cors: string | null;
  precompressed: readonly Encoding[];
  engine: EngineChoice;
  zeroCopy: boolean;
  rawHeaders: boolean;
  cacheBytes: number;
  cacheMaxFileBytes: number;
  maxInFlightBytes: number;
  inlineMaxBytes: number;
  inlineCacheBytes: number;
  statCacheMs: number;
  sender: Sender | null;
}

const MiB = 1 << 20;

export const STATIC_DEFAULTS = {
  index: 'index.html',
  listing: false,
  dotfiles: 'deny',
  symlinks: 'inside',
  maxAge: 0,
  immutable: false,
  engine: 'auto',
  zeroCopy: true,
  cacheBytes: 256 * MiB,
  cacheMaxFileBytes: 64 * MiB,
  maxInFlightBytes: 64 * MiB,
  inlineMaxBytes: 64 * 1024,
  inlineCacheBytes: 16 * MiB,
  statCacheMs: 1000,
  rawHeaders: false,
} as const;

function invalid(message: string): never {
  throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', message);
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) invalid(`option ${name} must be one of ${allowed.join(', ')}, got ${String(value)}`);
  return value as T;
}

function count(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) invalid(`option ${name} must be a non-negative integer, got ${String(value)}`);
  return value;
}

function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(`option ${name} must be a boolean`);
  return value;
}

const KNOWN = new Set([
  'index', 'listing', 'dotfiles', 'symlinks', 'maxAge', 'immutable', 'cors', 'precompressed', 'engine', 'zeroCopy',
  'cacheBytes', 'cacheMaxFileBytes', 'maxInFlightBytes', 'inlineMaxBytes', 'inlineCacheBytes', 'statCacheMs', 'sender', 'rawHeaders',
]);

/** Validates options up front (a typed error, never a late crash) and resolves the root to its real path. */
export function resolveStaticOptions(root: string, options: StaticOptions = {}, extraKeys: readonly string[] = []): ResolvedStaticOptions {
  if (typeof root !== 'string' || root.length === 0) invalid('root must be a non-empty path');
  if (typeof options !== 'object' || options === null) invalid('options must be an object');
  for (const key of Object.keys(options)) if (!KNOWN.has(key) && !extraKeys.includes(key)) invalid(`unknown option ${key}`);

  let realRoot: string;
  try {
    realRoot = fs.realpathSync(path.resolve(root));
  } catch (err) {
    invalid(`root ${root} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!fs.statSync(realRoot).isDirectory()) invalid(`root ${root} is not a directory`);

  const index = options.index === undefined ? STATIC_DEFAULTS.index : options.index;
  if (index !== false && (typeof index !== 'string' || index.length === 0 || index.includes('/') || index.startsWith('.'))) {
    invalid('option index must be a plain file name or false');
  }

  let cors: string | null = null;
  if (options.cors === true) cors = '*';
  else if (typeof options.cors === 'string' && /^[\x21-\x7e]+$/.test(options.cors)) cors = options.cors;
  else if (options.cors !== undefined && options.cors !== false) invalid('option cors must be a boolean or an origin');

  let precompressed: readonly Encoding[];
  if (options.precompressed === undefined || options.precompressed === true) precompressed = ['br', 'gzip'];
  else if (options.precompressed === false) precompressed = [];
  else if (Array.isArray(options.precompressed) && options.precompressed.every((e) => e === 'br' || e === 'gzip')) precompressed = [...new Set(options.precompressed)];
  else invalid("option precompressed must be a boolean or a list of 'br' and 'gzip'");

  const sender = options.sender ?? null;
  if (sender !== null && (typeof sender !== 'object' || typeof (sender as { send?: unknown }).send !== 'function')) invalid('option sender must be a Sender');

  return {
    root: realRoot,
    index,
    listing: bool('listing', options.listing, STATIC_DEFAULTS.listing),
    dotfiles: oneOf('dotfiles', options.dotfiles, ['deny', 'allow', 'ignore'], STATIC_DEFAULTS.dotfiles),
    symlinks: oneOf('symlinks', options.symlinks, ['inside', 'any', 'none'], STATIC_DEFAULTS.symlinks),
    maxAge: count('maxAge', options.maxAge, STATIC_DEFAULTS.maxAge),
    immutable: bool('immutable', options.immutable, STATIC_DEFAULTS.immutable),
    cors,
    precompressed,
    engine: oneOf('engine', options.engine, ['auto', 'zc-cache', 'splice', 'sendfile', 'copy'], STATIC_DEFAULTS.engine),
    zeroCopy: bool('zeroCopy', options.zeroCopy, STATIC_DEFAULTS.zeroCopy),
    rawHeaders: bool('rawHeaders', options.rawHeaders, STATIC_DEFAULTS.rawHeaders),
    cacheBytes: count('cacheBytes', options.cacheBytes, STATIC_DEFAULTS.cacheBytes),
    cacheMaxFileBytes: count('cacheMaxFileBytes', options.cacheMaxFileBytes, STATIC_DEFAULTS.cacheMaxFileBytes),
    maxInFlightBytes: count('maxInFlightBytes', options.maxInFlightBytes, STATIC_DEFAULTS.maxInFlightBytes),
    inlineMaxBytes: count('inlineMaxBytes', options.inlineMaxBytes, STATIC_DEFAULTS.inlineMaxBytes),
    inlineCacheBytes: count('inlineCacheBytes', options.inlineCacheBytes, STATIC_DEFAULTS.inlineCacheBytes),
    statCacheMs: count('statCacheMs', options.statCacheMs, STATIC_DEFAULTS.statCacheMs),
    sender,
  };
}
