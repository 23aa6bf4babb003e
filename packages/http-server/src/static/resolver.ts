// Maps a request path to what to serve, touching the filesystem at most once per path per
// statCacheMs: requests for a hot path cost one Map lookup. Symlink and dotfile rules applied here.
import * as fs from 'node:fs';
import { closeFileNow, openFileVersion } from '@zcsend/core';
import { encodePath, hasDotSegment, parseRequestPath } from './request-path.js';
import { contentTypeFor, makeRepresentation, sameVersion, type HeaderPolicy, type Representation } from './representation.js';
import type { Encoding, ResolvedStaticOptions } from './options.js';

export interface FileEntry {
  kind: 'file';
  identity: Representation;
  /** Precompressed siblings present on disk, in server preference order. */
  variants: Representation[];
  encodings: Encoding[];
}

export interface RedirectEntry {
  kind: 'redirect';
  /** Canonical path with the trailing slash (percent-encoded); used when the request is not mounted. */
  location: string;
}

export interface DirectoryEntry {
  kind: 'directory';
  fsPath: string;
  urlPath: string;
}

export interface ErrorEntry {
  kind: 'error';
  status: 400 | 403 | 404 | 500;
}

export type Entry = (FileEntry | RedirectEntry | DirectoryEntry | ErrorEntry) & { expires: number };

type Checked = { real: string; stat: fs.Stats } | { status: 403 | 404 | 400 | 500 };

const SIBLING_SUFFIX: Record<Encoding, string> = { br: '.br', gzip: '.gz' };
const MAX_ENTRIES = 16_384;
/**
 * Inline bodies above this size are worth an open file: sendfile then sends them without a copy.
 * Measured here against one write of head and body (64 KiB: about 15% less CPU per response; at
 * 16 KiB the copy is cheaper, at 32 KiB they tie).
 */
export const INLINE_SENDFILE_MIN_BYTES = 32 * 1024 + 1;
/** Open files held for inline bodies, at most (each is one descriptor of the process). */
const MAX_INLINE_FDS = 1024;

/**
 * A counter that moves on once per event-loop iteration in which it was read (a setImmediate
 * bumps it): work done in one synchronous stretch, such as a batch of ring completions, sees one
 * value.
 */
class LoopTurn {
  private value = 0;
  private scheduled = false;
  private readonly advance = () => {
    this.value++;
    this.scheduled = false;
  };

  current(): number {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.advance);
    }
    return this.value;
  }
}
/** Longer request paths are resolved every time: hostile clients must not fill memory with keys. */
const MAX_CACHED_KEY = 1024;

function realpath(p: string): Promise<string> {
  return new Promise((resolve, reject) => fs.realpath.native(p, (err, real) => (err ? reject(err) : resolve(real))));
}

function readWhole(fd: number): Promise<Buffer> {
  return new Promise((resolve, reject) => fs.readFile(fd, (err, data) => (err ? reject(err) : resolve(data))));
}

function stat(p: string): Promise<fs.Stats> {
  return new Promise((resolve, reject) => fs.stat(p, (err, s) => (err ? reject(err) : resolve(s))));
}

function statusOf(err: unknown): 400 | 403 | 404 | 500 {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return 404;
    case 'EACCES':
    case 'EPERM':
    case 'ELOOP':
      return 403;
    case 'ENAMETOOLONG':
      return 400;
    default:
      return 500;
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Linux releases the descriptor even when close reports an error.
  }
}

export class Resolver {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<Entry>>();
  private inlineBytes = 0;
  private inlineFds = 0;
  private readonly turn = new LoopTurn();
  private readonly rootPrefix: string;

  constructor(
    private readonly options: ResolvedStaticOptions,
    private readonly policy: HeaderPolicy,
  ) {
    this.rootPrefix = options.root === '/' ? '/' : options.root + '/';
  }

  /** The entry if it is still fresh, without waiting: the hot path. */
  cached(rawPath: string, now: number): Entry | undefined {
    const entry = this.entries.get(rawPath);
    return entry !== undefined && entry.expires > now ? entry : undefined;
  }

  resolve(rawPath: string): Promise<Entry> {
    let p = this.pending.get(rawPath);
    if (!p) {
      p = this.load(rawPath).finally(() => this.pending.delete(rawPath));
      this.pending.set(rawPath, p);
    }
    return p;
  }

  /** Bytes held by small files kept in memory. */
  get inlineCacheBytes(): number {
    return this.inlineBytes;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Open descriptors held for inline bodies. */
  get openInlineFiles(): number {
    return this.inlineFds;
  }

  /**
   * The open file behind `rep.inline`, opened on first use, or -1 (body too small to gain, cap
   * reached, representation released, or the file on disk is no longer this version). Opened
   * synchronously: the path was resolved moments ago and the call is made once per version.
   *
   * A held file is checked (fstat) in every event-loop turn that uses it (once for all the
   * responses of one batch of requests): rewritten in place (same inode), it would give other
   * bytes than `inline` under this version's ETag and Content-Length, or a mix of both when
   * sendfile stops short. Once it changed it is closed and the body goes from memory, as
   * node:http's path sends it. The caller uses the fd in the same synchronous step.
   */
  inlineFileFd(rep: Representation): number {
    const held = rep.inlineFd;
    if (held !== null) {
      if (held < 0) return held;
      const turn = this.turn.current();
      if (rep.inlineCheckedTurn === turn) return held;
      if (this.stillVersion(held, rep)) {
        rep.inlineCheckedTurn = turn;
        return held;
      }
      this.dropInlineFd(rep);
      return -1;
    }
    rep.inlineFd = -1;
    if (rep.size < INLINE_SENDFILE_MIN_BYTES || this.inlineFds >= MAX_INLINE_FDS) return -1;
    let fd: number;
    try {
      fd = fs.openSync(rep.fsPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch {
      return -1;
    }
    // Replaced or rewritten since it was read: its bytes may differ from `inline`.
    if (!this.stillVersion(fd, rep)) {
      closeQuietly(fd);
      return -1;
    }
    this.inlineFds++;
    rep.inlineFd = fd;
    rep.inlineCheckedTurn = this.turn.current();
    return fd;
  }

  /** The open file `fd` is still the version `rep` was read from (size, mtime, inode). */
  private stillVersion(fd: number, rep: Representation): boolean {
    try {
      return sameVersion(fs.fstatSync(fd), rep.stat);
    } catch {
      return false; // treated as changed
    }
  }

  /**
   * The file behind `rep` is no longer that version (a send found it replaced or rewritten):
   * every entry that serves it is looked up again on its next request, rather than at the end
   * of statCacheMs. Rare, so a scan.
   */
  expire(rep: Representation): void {
    for (const entry of this.entries.values()) {
      if (entry.kind === 'file' && (entry.identity === rep || entry.variants.includes(rep))) entry.expires = 0;
    }
  }

  clear(): void {
    for (const entry of this.entries.values()) this.releaseInline(entry, null);
    this.entries.clear();
  }

  private async load(rawPath: string): Promise<Entry> {
    let previous = this.entries.get(rawPath);
    let entry: Entry;
    try {
      entry = await this.compute(rawPath, previous);
    } catch {
      entry = { kind: 'error', status: 500, expires: 0 };
    }
    if (previous !== undefined && this.entries.get(rawPath) !== previous) {
      // `previous` left the cache while this load ran (evicted for a new path, or clear()): its
      // representations were released then. Those the new entry reuses are held again.
      this.reacquireInline(previous, entry);
      previous = undefined;
    }
    entry.expires = performance.now() + this.options.statCacheMs;
    if (previous) {
      this.releaseInline(previous, entry);
      this.entries.delete(rawPath);
    } else if (this.entries.size >= MAX_ENTRIES) {
      // Hostile clients can ask for endless distinct paths: forget the oldest.
      const oldest = this.entries.keys().next().value as string;
      this.releaseInline(this.entries.get(oldest)!, null);
      this.entries.delete(oldest);
    }
    const worthKeeping = entry.kind === 'file' || (this.options.statCacheMs > 0 && !(entry.kind === 'error' && entry.status === 400));
    if (worthKeeping && rawPath.length <= MAX_CACHED_KEY) this.entries.set(rawPath, entry);
    else if (entry.kind === 'file') this.releaseInline(entry, null);
    return entry;
  }

  private async compute(rawPath: string, previous: Entry | undefined): Promise<Entry> {
    const parsed = parseRequestPath(rawPath);
    if (!parsed.ok) return { kind: 'error', status: 400, expires: 0 };
    const { segments } = parsed;
    if (hasDotSegment(segments) && this.options.dotfiles !== 'allow') {
      return { kind: 'error', status: this.options.dotfiles === 'deny' ? 403 : 404, expires: 0 };
    }
    const joined = this.rootPrefix + segments.join('/');
    const target = await this.check(segments.length === 0 ? this.options.root : joined);
    if ('status' in target) return { kind: 'error', status: target.status, expires: 0 };

    const last = segments[segments.length - 1] ?? '';
    if (target.stat.isDirectory()) {
      if (!parsed.trailingSlash && segments.length > 0) return { kind: 'redirect', location: encodePath(segments, true), expires: 0 };
      if (this.options.index !== false) {
        const index = await this.check(`${target.real}/${this.options.index}`);
        if ('stat' in index && index.stat.isFile()) return this.fileEntry(index.real, index.stat, this.options.index, previous);
        if ('status' in index && index.status !== 404) return { kind: 'error', status: index.status, expires: 0 };
      }
      if (this.options.listing) return { kind: 'directory', fsPath: target.real, urlPath: encodePath(segments, true), expires: 0 };
      return { kind: 'error', status: 403, expires: 0 };
    }
    if (!target.stat.isFile()) return { kind: 'error', status: 403, expires: 0 }; // FIFOs, devices, sockets
    if (parsed.trailingSlash) return { kind: 'error', status: 404, expires: 0 };
    return this.fileEntry(target.real, target.stat, last, previous);
  }

  /** realpath + stat, refusing what the symlink policy forbids. */
  private async check(p: string): Promise<Checked> {
    let real: string;
    try {
      real = await realpath(p);
    } catch (err) {
      return { status: statusOf(err) };
    }
    // `p` is built from the real root and plain names, so it differs from its real path only through a symlink.
    if (real !== p) {
      if (this.options.symlinks === 'none') return { status: 403 };
      if (this.options.symlinks === 'inside' && real !== this.options.root && !real.startsWith(this.rootPrefix)) return { status: 403 };
    }
    try {
      return { real, stat: await stat(real) };
    } catch (err) {
      return { status: statusOf(err) };
    }
  }

  private async fileEntry(real: string, st: fs.Stats, name: string, previous: Entry | undefined): Promise<Entry> {
    const prevFile = previous?.kind === 'file' ? previous : null;
    const contentType = contentTypeFor(name);
    const variants: Representation[] = [];
    const encodings: Encoding[] = [];
    for (const enc of this.options.precompressed) {
      const sibling = await this.check(real + SIBLING_SUFFIX[enc]);
      if (!('stat' in sibling) || !sibling.stat.isFile()) continue;
      const prev = prevFile?.variants.find((v) => v.encoding === enc);
      variants.push(await this.representation(sibling.real, sibling.stat, contentType, enc, true, prev));
      encodings.push(enc);
    }
    const identity = await this.representation(real, st, contentType, null, variants.length > 0, prevFile?.identity);
    return { kind: 'file', identity, variants, encodings, expires: 0 };
  }

  private async representation(
    real: string,
    st: fs.Stats,
    contentType: string,
    encoding: Encoding | null,
    vary: boolean,
    prev: Representation | undefined,
  ): Promise<Representation> {
    if (
      prev &&
      prev.fsPath === real &&
      prev.contentType === contentType &&
      sameVersion(prev.stat, st) &&
      (prev.fullHeaders.includes('Vary') === vary)
    ) {
      return prev;
    }
    const inline = await this.readInline(real, st);
    return makeRepresentation(real, st, contentType, encoding, vary, this.policy, inline);
  }

  private async readInline(real: string, st: fs.Stats): Promise<Buffer | null> {
    if (st.size === 0 || st.size > this.options.inlineMaxBytes) return null;
    if (this.inlineBytes + st.size > this.options.inlineCacheBytes) return null;
    this.inlineBytes += st.size;
    let fd = -1;
    try {
      // Read through an fd checked to be `st`'s version: a file renamed over the path between the
      // stat and the read (even one of the same size) cannot be held under this stat's ETag.
      fd = await openFileVersion({ path: real, stat: st });
      const data = await readWhole(fd);
      if (data.length === st.size) return data;
    } catch {
      // Changed, gone or unreadable now: not held; the body step finds out and answers accordingly.
    } finally {
      // Closed before the entry is used: no descriptor of this read outlives the lookup.
      if (fd >= 0) closeFileNow(fd);
    }
    this.inlineBytes -= st.size;
    return null;
  }

  /**
   * `next` reuses representations of `old`, which were released (inline bytes given back, open
   * file closed): count their bytes again and let them open a file again when asked.
   */
  private reacquireInline(old: Entry, next: Entry): void {
    if (old.kind !== 'file' || next.kind !== 'file') return;
    const released = new Set([old.identity, ...old.variants]);
    for (const rep of [next.identity, ...next.variants]) {
      if (!rep.inline || !released.has(rep)) continue;
      this.inlineBytes += rep.inline.length;
      if (rep.inlineFd === -1) rep.inlineFd = null;
    }
  }

  /** Gives back the inline bytes (and open file) of `old` representations that `next` does not reuse. */
  private releaseInline(old: Entry, next: Entry | null): void {
    if (old.kind !== 'file') return;
    const kept = next?.kind === 'file' ? new Set([next.identity, ...next.variants]) : null;
    for (const rep of [old.identity, ...old.variants]) {
      if (!rep.inline || kept?.has(rep)) continue;
      this.inlineBytes -= rep.inline.length;
      this.dropInlineFd(rep);
    }
  }

  /**
   * Closes the file held for `rep` (if any) and marks it -1 so it is not reopened. Only
   * synchronous calls use the fd, so none is using it now.
   */
  private dropInlineFd(rep: Representation): void {
    if (rep.inlineFd !== null && rep.inlineFd >= 0) {
      closeQuietly(rep.inlineFd);
      this.inlineFds--;
    }
    rep.inlineFd = -1;
  }
}
