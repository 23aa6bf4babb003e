// One servable version of a file (the file itself or a precompressed sibling) with everything a
// response needs computed once: validators and the header lists for 200, 206 and 304.
import type * as fs from 'node:fs';
import * as path from 'node:path';
import * as mime from 'mime-types';
import type { Encoding } from './options.js';

export interface Representation {
  /** Real path on disk (symlinks resolved). */
  fsPath: string;
  stat: fs.Stats;
  size: number;
  /** Strong validator: changes with inode, size or mtime. */
  etag: string;
  lastModified: string;
  /** Last-Modified in whole seconds, as HTTP dates compare. */
  mtimeSec: number;
  contentType: string;
  encoding: Encoding | null;
  /** Headers of a full 200, Content-Length included, as Node's flat [name, value, ...] list. */
  fullHeaders: string[];
  /** Headers every 200/206 carries, without Content-Type and Content-Length. */
  rangeHeaders: string[];
  /** Headers of a 304 (validators and caching, no content headers). */
  notModifiedHeaders: string[];
  /** The bytes themselves for small files (written with the headers in one go), else null. */
  inline: Buffer | null;
  /**
   * This version of the file held open, so the fast path can send `inline` by sendfile instead
   * of copying it: null until first asked for (Resolver.inlineFileFd), -1 when not available
   * (small body, cap reached, file changed, released). Closed by the Resolver when the
   * representation leaves its cache.
   */
  inlineFd: number | null;
  /** The event-loop turn (LoopTurn) in which the held `inlineFd` was last found to be this version. */
  inlineCheckedTurn: number;
}

export interface HeaderPolicy {
  cacheControl: string;
  /** Extra headers on every response (CORS). */
  common: readonly string[];
}

const typeByExtension = new Map<string, string>();

/** Content-Type by extension, charset added for text types (mime-types' contentType). Memoized. */
export function contentTypeFor(name: string): string {
  const ext = path.extname(name).toLowerCase();
  let type = typeByExtension.get(ext);
  if (type === undefined) {
    type = (ext && mime.contentType(ext)) || 'application/octet-stream';
    if (typeByExtension.size < 4096) typeByExtension.set(ext, type);
  }
  return type;
}

export function etagOf(stat: fs.Stats): string {
  // Microsecond mtime keeps two writes within one second apart; the inode catches rename-over.
  return `"${stat.ino.toString(36)}-${stat.size.toString(36)}-${Math.floor(stat.mtimeMs * 1000).toString(36)}"`;
}

export function sameVersion(a: fs.Stats, b: fs.Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

export function makeRepresentation(
  fsPath: string,
  stat: fs.Stats,
  contentType: string,
  encoding: Encoding | null,
  vary: boolean,
  policy: HeaderPolicy,
  inline: Buffer | null,
): Representation {
  const etag = etagOf(stat);
  const mtimeSec = Math.floor(stat.mtimeMs / 1000);
  const lastModified = new Date(mtimeSec * 1000).toUTCString();
  const validators = ['ETag', etag, 'Last-Modified', lastModified, 'Cache-Control', policy.cacheControl];
  const negotiation = vary ? ['Vary', 'Accept-Encoding'] : [];
  const contentEncoding = encoding ? ['Content-Encoding', encoding] : [];
  const rangeHeaders = [...validators, 'Accept-Ranges', 'bytes', ...contentEncoding, ...negotiation, ...policy.common];
  return {
    fsPath,
    stat,
    size: stat.size,
    etag,
    lastModified,
    mtimeSec,
    contentType,
    encoding,
    fullHeaders: ['Content-Type', contentType, 'Content-Length', String(stat.size), ...rangeHeaders],
    rangeHeaders,
    notModifiedHeaders: [...validators, ...negotiation, ...policy.common],
    inline,
    inlineFd: inline ? null : -1,
    inlineCheckedTurn: -1,
  };
}
