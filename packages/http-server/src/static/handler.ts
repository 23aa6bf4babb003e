// serveStatic: a (req, res, next?) handler for node:http, connect and express.
import { randomBytes } from 'node:crypto';
import type * as http from 'node:http';
import { FileSender, getSender, Sender, type FileSenderStats } from '@zcsend/core';
import { chooseEncoding } from './accept-encoding.js';
import { evaluatePreconditions } from './conditional.js';
import { sendFileBody, writeHead, type BodyOutcome, type BodyPlan } from './file-body.js';
import { renderListing } from './listing.js';
import { resolveStaticOptions, type ResolvedStaticOptions, type StaticOptions } from './options.js';
import { contentRange, decideRange, multipartLayout } from './ranges.js';
import { unknownBodyLength } from './request-framing.js';
import type { Representation } from './representation.js';
import { Resolver, type DirectoryEntry, type Entry, type FileEntry, type RedirectEntry } from './resolver.js';
import { statusResponses, type ErrorStatus, type StatusResponse } from './responses.js';
import type { FastHeaders } from '../fast/request-head.js';

export type NextFunction = (err?: unknown) => void;

export interface StaticStats {
  /** Path entries cached (stat/realpath results). */
  entries: number;
  /** Bytes of small files held in memory and written with their headers. */
  inlineBytes: number;
  /** Files held open so the fast path can send those bodies by sendfile (no copy). */
  inlineFiles: number;
  responses: {
    /** Bodies written from memory with the headers (small files, multipart of small files). */
    inline: number;
    /** Bodies sent by the FileSender on the raw socket. */
    fileSender: number;
    /** Bodies streamed through res.write (TLS, HTTP/2). */
    stream: number;
    /** Bodies cut short (client gone, timeout, file changed): the connection was destroyed. */
    aborted: number;
  };
  files: FileSenderStats;
}

export interface StaticHandler {
  (req: http.IncomingMessage, res: http.ServerResponse, next?: NextFunction): void;
  readonly options: Readonly<ResolvedStaticOptions>;
  readonly sender: Sender;
  readonly fileSender: FileSender;
  stats(): StaticStats;
  /** Waits for bodies in progress and the release of their buffers; closes a Sender it created. */
  close(): Promise<void>;
}

const LISTING_HEADERS = ['Content-Type', 'text/html; charset=utf-8', 'Cache-Control', 'no-cache'];

/**
 * What the file server's fast path may answer itself: a full 200 (GET or HEAD) or a 304 for a
 * file, with its status line and headers already rendered (Date and connection headers excepted).
 */
export interface FastPlan {
  status: 200 | 206 | 304;
  /** Status line and header lines, each ending in CRLF; the caller adds Date, Connection and the blank line. */
  head: string;
  /** Identifies `head` (same object for the same representation and status): a cheap cache key; null when the head is this request's own (206). */
  key: object | null;
  /** The body from memory, or null (HEAD, 304, empty file, or a body to send from `file`). */
  body: Buffer | null;
  /** A body too large to keep in memory: bytes [start, end) of it sent by the FileSender. */
  file: Representation | null;
  /** The representation answered (for `body`, its open file: StaticServer.inlineFileFd). */
  rep: Representation;
  start: number;
  end: number;
}

/** The request as the fast path read it. */
export interface FastRequest {
  method: 'GET' | 'HEAD';
  target: string;
  headers: FastHeaders;
}

const STATUS_LINE = { 200: 'HTTP/1.1 200 OK\r\n', 206: 'HTTP/1.1 206 Partial Content\r\n', 304: 'HTTP/1.1 304 Not Modified\r\n' } as const;
/** Rendered heads, keyed by a representation's (immutable) header list; 200 and 304 use different lists. */
const renderedHeads = new WeakMap<readonly string[], string>();

function headLines(status: 200 | 206 | 304, headers: readonly string[]): string {
  let text: string = STATUS_LINE[status];
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return text;
}

function renderHead(status: 200 | 304, headers: readonly string[]): string {
  let text = renderedHeads.get(headers);
  if (text === undefined) {
    text = headLines(status, headers);
    renderedHeads.set(headers, text);
  }
  return text;
}

class StaticServer {
  readonly sender: Sender;
  readonly fileSender: FileSender;
  private readonly ownsSender: boolean;
  private readonly resolver: Resolver;
  private readonly statuses: Map<ErrorStatus, StatusResponse>;
  private readonly common: string[];
  private readonly boundary = randomBytes(12).toString('hex');
  private readonly counts = { inline: 0, fileSender: 0, stream: 0, aborted: 0 };
  /** Requests answered a second time because their file changed before anything was sent. */
  private readonly answeredAgain = new WeakSet<http.IncomingMessage>();

  constructor(readonly options: ResolvedStaticOptions) {
    this.ownsSender = !options.sender && !options.zeroCopy;
    this.sender = options.sender ?? (options.zeroCopy ? getSender() : new Sender({ backend: 'copy' }));
    this.fileSender = new FileSender({
      engine: options.zeroCopy ? options.engine : 'copy',
      cacheBytes: options.cacheBytes,
      cacheMaxFileBytes: Math.min(options.cacheMaxFileBytes, options.cacheBytes, 1 << 30),
      maxInFlightBytes: options.maxInFlightBytes,
      sender: this.sender,
    });
    this.common = options.cors
      ? [
          'Access-Control-Allow-Origin', options.cors,
          'Access-Control-Expose-Headers', 'Content-Range, Content-Length, Content-Encoding, Accept-Ranges, ETag, Last-Modified',
        ]
      : [];
    const cacheControl = `public, max-age=${options.maxAge}${options.immutable ? ', immutable' : ''}`;
    this.resolver = new Resolver(options, { cacheControl, common: this.common });
    this.statuses = statusResponses(this.common, options.cors ? 'GET, HEAD, OPTIONS' : 'GET, HEAD');
  }

  handle(req: http.IncomingMessage, res: http.ServerResponse, next: NextFunction | undefined): void {
    if (unknownBodyLength(req.headers['transfer-encoding'])) return this.rejectFraming(req, res);
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      if (method === 'OPTIONS' && this.options.cors) return this.preflight(req, res);
      if (next) return next();
      return this.sendStatus(req, res, 405);
    }
    let url = req.url ?? '/';
    if (url.charCodeAt(0) !== 47 /* / */) url = originForm(url);
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const entry = this.resolver.cached(rawPath, performance.now());
    if (entry) {
      this.serve(req, res, next, entry, url, q);
      return;
    }
    this.resolver.resolve(rawPath).then(
      (resolved) => this.serve(req, res, next, resolved, url, q),
      (err) => this.fail(req, res, err),
    );
  }

  /**
   * The fast path's question: can this GET/HEAD be answered as a plain 200 or 304 of a file? null
   * when anything else applies (redirect, listing, error, 412, a target not in origin form):
   * node:http then handles the request through handle(), with the same outcome as always.
   */
  fastPlan(req: FastRequest, now: number): FastPlan | null | Promise<FastPlan | null> {
    const q = req.target.indexOf('?');
    const rawPath = q < 0 ? req.target : req.target.slice(0, q);
    const entry = this.resolver.cached(rawPath, now);
    if (entry) return this.planFor(req, entry);
    return this.resolver.resolve(rawPath).then(
      (resolved) => this.planFor(req, resolved),
      () => null,
    );
  }

  /**
   * A body send failed; when it found the file replaced or rewritten since its stat
   * (ZCSEND_ERR_FILE_CHANGED: the FileSender sent nothing, not even a head it was given), the
   * next request for it looks the file up again instead of meeting the same stale stat until
   * statCacheMs ends. True then.
   */
  bodyFailed(rep: Representation, error: unknown): boolean {
    if ((error as { code?: unknown } | null)?.code !== 'ZCSEND_ERR_FILE_CHANGED') return false;
    this.resolver.expire(rep);
    return true;
  }

  /** Counts a body the fast path sent (or failed to). */
  noteFastBody(kind: 'inline' | 'fileSender' | 'aborted'): void {
    this.counts[kind]++;
  }

  private planFor(req: FastRequest, entry: Entry): FastPlan | null {
    if (entry.kind !== 'file') return null;
    const rep = this.pick(entry, req.headers['accept-encoding']);
    const pre = evaluatePreconditions(req.headers, rep);
    if (pre === 'failed') return null;
    if (pre === 'not-modified') {
      const key = rep.notModifiedHeaders;
      return { status: 304, head: renderHead(304, key), key, body: null, file: null, rep, start: 0, end: 0 };
    }
    const decision = decideRange(req.headers.range, req.headers['if-range'], rep);
    if (decision.kind === 'single') {
      // Same headers, in the same order, as serveFile's single-range answer.
      const { start, end } = decision.range;
      const head = headLines(206, ['Content-Type', rep.contentType, 'Content-Length', String(end - start), 'Content-Range', contentRange(decision.range, rep.size), ...rep.rangeHeaders]);
      if (req.method === 'HEAD') return { status: 206, head, key: null, body: null, file: null, rep, start, end };
      if (rep.inline) return { status: 206, head, key: null, body: rep.inline.subarray(start, end), file: null, rep, start, end };
      return { status: 206, head, key: null, body: null, file: rep, rep, start, end };
    }
    if (decision.kind !== 'full') return null; // several ranges, or none satisfiable: node:http's path
    const key = rep.fullHeaders;
    const head = renderHead(200, key);
    const size = rep.size;
    if (req.method === 'HEAD' || size === 0) return { status: 200, head, key, body: null, file: null, rep, start: 0, end: size };
    return rep.inline
      ? { status: 200, head, key, body: rep.inline, file: null, rep, start: 0, end: size }
      : { status: 200, head, key, body: null, file: rep, rep, start: 0, end: size };
  }

  /** The open file behind an inline body, for sending it by sendfile; -1 when there is none. */
  inlineFileFd(rep: Representation): number {
    return this.resolver.inlineFileFd(rep);
  }

  stats(): StaticStats {
    return {
      entries: this.resolver.size,
      inlineBytes: this.resolver.inlineCacheBytes,
      inlineFiles: this.resolver.openInlineFiles,
      responses: { ...this.counts },
      files: this.fileSender.stats(),
    };
  }

  async close(): Promise<void> {
    await this.fileSender.close();
    this.resolver.clear();
    if (this.ownsSender) await this.sender.close();
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse, next: NextFunction | undefined, entry: Entry, url: string, q: number): void {
    try {
      switch (entry.kind) {
        case 'file':
          return this.serveFile(req, res, next, entry);
        case 'redirect':
          return this.redirect(req, res, entry, url, q);
        case 'directory':
          return this.track(req, res, this.listing(req, res, entry));
        case 'error':
          if (next && entry.status === 404) return next();
          return this.sendStatus(req, res, entry.status);
      }
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private serveFile(req: http.IncomingMessage, res: http.ServerResponse, next: NextFunction | undefined, entry: FileEntry): void {
    const rep = this.pick(entry, req.headers['accept-encoding']);
    const pre = evaluatePreconditions(req.headers, rep);
    if (pre === 'not-modified') {
      this.writeHead(res, 304, rep.notModifiedHeaders);
      res.end();
      return;
    }
    if (pre === 'failed') return this.sendStatus(req, res, 412);

    const isHead = req.method === 'HEAD';
    const ifRange = req.headers['if-range'];
    const decision = decideRange(req.headers.range, typeof ifRange === 'string' ? ifRange : undefined, rep);
    switch (decision.kind) {
      case 'full': {
        if (isHead || rep.size === 0) return this.endWith(res, 200, rep.fullHeaders, undefined);
        if (rep.inline) return this.endWith(res, 200, rep.fullHeaders, rep.inline);
        return this.body(req, res, next, rep, 200, rep.fullHeaders, { kind: 'range', range: { start: 0, end: rep.size } });
      }
      case 'single': {
        const { range } = decision;
        const headers = [
          'Content-Type', rep.contentType,
          'Content-Length', String(range.end - range.start),
          'Content-Range', contentRange(range, rep.size),
          ...rep.rangeHeaders,
        ];
        if (isHead) return this.endWith(res, 206, headers, undefined);
        if (rep.inline) return this.endWith(res, 206, headers, rep.inline.subarray(range.start, range.end));
        return this.body(req, res, next, rep, 206, headers, { kind: 'range', range });
      }
      case 'multi': {
        const layout = multipartLayout(decision.ranges, rep.size, rep.contentType, this.boundary);
        const headers = ['Content-Type', layout.contentType, 'Content-Length', String(layout.length), ...rep.rangeHeaders];
        if (isHead) return this.endWith(res, 206, headers, undefined);
        if (rep.inline) {
          const inline = rep.inline;
          const pieces = layout.parts.flatMap((p) => [p.head, inline.subarray(p.range.start, p.range.end)]);
          return this.endWith(res, 206, headers, Buffer.concat([...pieces, layout.tail]));
        }
        return this.body(req, res, next, rep, 206, headers, { kind: 'multipart', layout });
      }
      case 'unsatisfiable': {
        const status = this.statuses.get(416)!;
        this.writeHead(res, 416, ['Content-Range', `bytes */${rep.size}`, ...status.headers]);
        res.end(isHead ? undefined : status.body);
        return;
      }
    }
  }

  private pick(entry: FileEntry, acceptEncoding: string | undefined): Representation {
    if (entry.variants.length === 0) return entry.identity;
    const chosen = chooseEncoding(acceptEncoding, entry.encodings);
    if (chosen === null) return entry.identity;
    return entry.variants[entry.encodings.indexOf(chosen)] ?? entry.identity;
  }

  private writeHead(res: http.ServerResponse, status: number, headers: readonly string[]): void {
    writeHead(res, status, headers, this.options.rawHeaders);
  }

  private endWith(res: http.ServerResponse, status: number, headers: readonly string[], body: Uint8Array | undefined): void {
    this.writeHead(res, status, headers);
    res.end(body);
    if (body !== undefined) this.counts.inline++;
  }

  private body(req: http.IncomingMessage, res: http.ServerResponse, next: NextFunction | undefined, rep: Representation, status: number, headers: readonly string[], plan: BodyPlan): void {
    const work = sendFileBody(this.fileSender, req, res, rep, status, headers, plan, this.options.rawHeaders).then((outcome) => {
      if (outcome.ok || !outcome.stale) return outcome;
      // The file changed (or went) since its lookup, and nothing of this response went out:
      // answer it afresh, once (the new version, or a 404). A file changing under every lookup gets a 500.
      this.resolver.expire(rep);
      if (this.answeredAgain.has(req)) throw outcome.error;
      this.answeredAgain.add(req);
      this.handle(req, res, next);
      return undefined;
    });
    this.track(req, res, work);
  }

  private track(req: http.IncomingMessage, res: http.ServerResponse, work: Promise<BodyOutcome | void>): void {
    work.then(
      (outcome) => {
        if (!outcome) return;
        if (!outcome.ok) this.counts.aborted++;
        else if (outcome.engine === 'stream') this.counts.stream++;
        else this.counts.fileSender++;
      },
      (err) => this.fail(req, res, err),
    );
  }

  private redirect(req: http.IncomingMessage, res: http.ServerResponse, entry: RedirectEntry, url: string, q: number): void {
    // Mounted under connect/express, req.url lost the mount path: redirect relative to the original URL.
    const original = (req as { originalUrl?: string }).originalUrl;
    let location = entry.location;
    if (typeof original === 'string' && original !== url) {
      const oq = original.indexOf('?');
      // One leading slash only: `//host/x/` would be a protocol-relative redirect elsewhere.
      location = '/' + (oq < 0 ? original : original.slice(0, oq)).replace(/^[/\\]+/, '') + '/';
    }
    if (q >= 0) location += url.slice(q);
    const body = Buffer.from('Moved Permanently\n');
    this.writeHead(res, 301, ['Location', location, 'Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(body.length), ...this.common]);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private async listing(req: http.IncomingMessage, res: http.ServerResponse, entry: DirectoryEntry): Promise<void> {
    const html = Buffer.from(await renderListing(entry.fsPath, entry.urlPath, this.options.dotfiles === 'allow'));
    this.writeHead(res, 200, [...LISTING_HEADERS, 'Content-Length', String(html.length), ...this.common]);
    res.end(req.method === 'HEAD' ? undefined : html);
  }

  private preflight(req: http.IncomingMessage, res: http.ServerResponse): void {
    const requested = req.headers['access-control-request-headers'];
    this.writeHead(res, 204, [
      ...this.common,
      'Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS',
      'Access-Control-Allow-Headers', requested ?? 'Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range',
      'Access-Control-Max-Age', '86400',
    ]);
    res.end();
  }

  /** 400 and close: what follows the head on this connection cannot be told apart from the body. */
  private rejectFraming(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.shouldKeepAlive = false;
    this.sendStatus(req, res, 400);
  }

  sendStatus(req: http.IncomingMessage, res: http.ServerResponse, status: ErrorStatus): void {
    const response = this.statuses.get(status)!;
    this.writeHead(res, status, response.headers);
    res.end(req.method === 'HEAD' ? undefined : response.body);
  }

  /** Unexpected failure: a bare 500 if nothing was sent yet, else the connection goes. */
  private fail(req: http.IncomingMessage, res: http.ServerResponse, _err: unknown): void {
    if (!res.headersSent && !res.writableEnded) {
      try {
        this.sendStatus(req, res, 500);
        return;
      } catch {
        // fall through to destroying the connection
      }
    }
    res.destroy();
  }
}

/** Absolute-form targets (`GET http://host/path`, RFC 9112 3.2.2) are served by their path; anything else stays invalid. */
function originForm(target: string): string {
  const m = /^https?:\/\/[^/?#]*/i.exec(target);
  if (!m) return target;
  const rest = target.slice(m[0].length);
  return rest.length === 0 || rest.charCodeAt(0) === 63 /* ? */ ? '/' + rest : rest;
}

/**
 * A request handler serving files under `root`. Works as `http.createServer(handler)`, and as
 * connect/express middleware: with `next`, requests for missing files and methods other than
 * GET/HEAD fall through to it.
 */
const servers = new WeakMap<StaticHandler, StaticServer>();

/** The server behind a handler made by serveStatic (for the file server's fast path). */
export function staticServerOf(handler: StaticHandler): StaticServer | undefined {
  return servers.get(handler);
}

export type { StaticServer };

export function serveStatic(root: string, options: StaticOptions = {}): StaticHandler {
  const server = new StaticServer(resolveStaticOptions(root, options));
  const handler = ((req: http.IncomingMessage, res: http.ServerResponse, next?: NextFunction) => server.handle(req, res, next)) as StaticHandler;
  Object.defineProperties(handler, {
    options: { value: Object.freeze({ ...server.options }), enumerable: true },
    sender: { value: server.sender, enumerable: true },
    fileSender: { value: server.fileSender, enumerable: true },
    stats: { value: () => server.stats() },
    close: { value: () => server.close() },
  });
  servers.set(handler, server);
  return handler;
}
