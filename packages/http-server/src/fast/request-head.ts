// A deliberately narrow HTTP/1.x request-head reader for the fast path. It accepts only the
// plainest GET/HEAD heads (RFC 9112 grammar, no body, no framing headers) and declines anything
// else, so node:http's parser (llhttp) decides every request that is not plain. A decline never
// errors: the bytes go to node:http as they are. Framing can therefore never disagree with
// llhttp's: an accepted head has no body by construction (no Content-Length, no Transfer-Encoding).

import { maxHeaderSize } from 'node:http';

/**
 * node:http's limit (16 KiB unless --max-http-header-size says otherwise): a longer head goes to
 * node:http, which answers 431. llhttp counts only target, names and values, so a whole head
 * within it is always within node:http's.
 */
export const MAX_HEAD_BYTES = maxHeaderSize;

/** The request headers the file server reads; each may appear at most once. */
export interface FastHeaders {
  'accept-encoding'?: string;
  'if-match'?: string;
  'if-none-match'?: string;
  'if-modified-since'?: string;
  'if-unmodified-since'?: string;
  range?: string;
  'if-range'?: string;
}

export interface RequestHead {
  method: 'GET' | 'HEAD';
  /** origin-form target, as sent (latin1). */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** The connection stays open after the response (HTTP/1.1 default, HTTP/1.0 with keep-alive). */
  keepAlive: boolean;
  headers: FastHeaders;
  /** Offset just past the blank line ending the head. */
  end: number;
}

/** `incomplete`: wait for more bytes; `decline`: let node:http handle this request and the rest of the connection. */
export type HeadResult = RequestHead | 'incomplete' | 'decline';

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

// tchar (RFC 9110 5.6.2): ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA
const TCHAR = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;
for (const ch of "!#$%&'*+-.^_`|~") TCHAR[ch.charCodeAt(0)] = 1;

// field-value bytes: VCHAR, obs-text, SP, HTAB. No CTL (NUL, bare CR/LF, DEL).
const VALUE = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) VALUE[c] = 1;
for (let c = 0x80; c <= 0xff; c++) VALUE[c] = 1;
VALUE[SP] = 1;
VALUE[HTAB] = 1;

// Target bytes accepted: visible ASCII but '#' (fragments are not sent in requests). Percent-
// decoding and path rules are the resolver's, as for node:http requests.
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1;
TARGET[0x23] = 0;

/** What each recognised header name means for the fast path. */
const enum Kind {
  Keep, // stored in FastHeaders
  Host,
  Connection,
  Decline, // body, protocol or range headers: node:http's business
}

const KNOWN = new Map<string, Kind>([
  ['accept-encoding', Kind.Keep],
  ['if-match', Kind.Keep],
  ['if-none-match', Kind.Keep],
  ['if-modified-since', Kind.Keep],
  ['if-unmodified-since', Kind.Keep],
  ['host', Kind.Host],
  ['connection', Kind.Connection],
  // llhttp reads Proxy-Connection's close/keep-alive tokens as Connection's.
  ['proxy-connection', Kind.Connection],
  ['content-length', Kind.Decline],
  ['transfer-encoding', Kind.Decline],
  ['expect', Kind.Decline],
  ['upgrade', Kind.Decline],
  ['range', Kind.Keep],
  ['if-range', Kind.Keep],
  ['http2-settings', Kind.Decline],
]);

interface KnownName {
  name: string;
  kind: Kind;
  bytes: Uint8Array;
}

/** The recognised names by length: a header line is matched on its bytes, no string made. */
const KNOWN_BY_LENGTH: KnownName[][] = [];
for (const [name, kind] of KNOWN) (KNOWN_BY_LENGTH[name.length] ??= []).push({ name, kind, bytes: Buffer.from(name, 'latin1') });

/**
 * The recognised header named by the token `buf[start, end)`, case-insensitively, or undefined.
 * `byte | 0x20` folds a letter to lower case; for the other bytes of the known names ('-' and
 * digits) it can only match itself among token characters, which is all a name holds here.
 */
function knownName(buf: Buffer, start: number, end: number): KnownName | undefined {
  const candidates = KNOWN_BY_LENGTH[end - start];
  if (candidates === undefined) return undefined;
  next: for (const candidate of candidates) {
    const bytes = candidate.bytes;
    for (let k = 0; k < bytes.length; k++) if ((buf[start + k]! | 0x20) !== bytes[k]) continue next;
    return candidate;
  }
  return undefined;
}

/** Where the blank line after the head starts (its CR CR LF... first CR), or -1 before `end`. */
function headStop(buf: Buffer, start: number, end: number): number {
  for (let i = start + 3; i < end; i++) {
    if (buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) return i - 3;
  }
  return -1;
}

function startsWith(buf: Buffer, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (buf[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** The close and keep-alive tokens seen in Connection lines; llhttp keeps both as flags. */
interface ConnectionTokens {
  close: boolean;
  keepAlive: boolean;
}

/**
 * Adds one Connection value's tokens to `seen`; false (decline) for upgrade, an empty list
 * element, or a tab after the leading whitespace (llhttp ends a token at a space or comma only:
 * `close<TAB>` is not close to it).
 */
function addConnectionTokens(value: string, seen: ConnectionTokens): boolean {
  if (value.includes('\t')) return false;
  for (const raw of value.split(',')) {
    const token = raw.trim().toLowerCase();
    if (token === 'close') seen.close = true;
    else if (token === 'keep-alive') seen.keepAlive = true;
    else if (token === 'upgrade' || token === '') return false;
  }
  return true;
}

/** The method prefixes a head the fast path may take starts with. */
const GET_ = Buffer.from('GET ', 'latin1');
const HEAD_ = Buffer.from('HEAD ', 'latin1');

/**
 * An unfinished head that can already be declined: a method other than GET/HEAD, a bare LF, or a
 * finished header line that is not `token ":" value` (llhttp answers 400 at once; waiting for a
 * blank line that may never come would instead hold the connection until the head timeout).
 */
function hopeless(buf: Buffer, start: number, end: number): boolean {
  if (!agreesWith(buf, start, end, GET_) && !agreesWith(buf, start, end, HEAD_)) return true;
  let lineStart = -1; // the request line is checked once the head is complete
  for (let lf = buf.indexOf(LF, start); lf >= 0 && lf < end; lf = buf.indexOf(LF, lf + 1)) {
    if (lf === start || buf[lf - 1] !== CR) return true;
    if (lineStart >= 0 && !headerLine(buf, lineStart, lf - 1)) return true;
    lineStart = lf + 1;
  }
  return false;
}

/** `buf[start, cr)` is a header line as the fast path reads one. */
function headerLine(buf: Buffer, start: number, cr: number): boolean {
  const colon = headerNameEnd(buf, start);
  return colon >= 0 && fieldValueEnd(buf, colon + 1) === cr;
}

/** The colon after a header name (a token) starting at `start`, or -1 when there is none. */
function headerNameEnd(buf: Buffer, start: number): number {
  let i = start;
  while (TCHAR[buf[i]!] === 1) i++;
  return i > start && buf[i] === COLON ? i : -1;
}

/** The first byte from `i` on that a field value cannot hold: the line's CR when the value is well formed. */
function fieldValueEnd(buf: Buffer, i: number): number {
  while (VALUE[buf[i]!] === 1) i++;
  return i;
}

/** The bytes so far agree with `prefix`, as far as both go. */
function agreesWith(buf: Buffer, start: number, end: number, prefix: Buffer): boolean {
  const n = Math.min(end - start, prefix.length);
  return prefix.compare(buf, start, start + n, 0, n) === 0;
}

/**
 * Reads one request head from `buf[start, end)`. Accepts `GET|HEAD SP origin-form SP HTTP/1.[01] CRLF`,
 * then header lines `token ":" OWS value OWS CRLF`, then CRLF. Everything else declines: other
 * methods, absolute-form, obs-fold, bare CR or LF, whitespace before the colon, control bytes,
 * duplicate recognised headers, any header that frames a body or changes the protocol, ranges,
 * and HTTP/1.1 without Host (node:http answers those, most with 400).
 */
export function readRequestHead(buf: Buffer, start: number, end: number): HeadResult {
  const stop = headStop(buf, start, end);
  if (stop < 0) return end - start > MAX_HEAD_BYTES || hopeless(buf, start, end) ? 'decline' : 'incomplete';
  const headEnd = stop + 4;
  if (headEnd - start > MAX_HEAD_BYTES) return 'decline';

  // Request line.
  let i = start;
  let method: 'GET' | 'HEAD';
  if (startsWith(buf, i, 'GET ')) {
    method = 'GET';
    i += 4;
  } else if (startsWith(buf, i, 'HEAD ')) {
    method = 'HEAD';
    i += 5;
  } else return 'decline';
  const targetStart = i;
  if (buf[i] !== 0x2f /* / */) return 'decline';
  while (i < stop && TARGET[buf[i]!] === 1) i++;
  if (buf[i] !== SP) return 'decline';
  const target = buf.toString('latin1', targetStart, i);
  i++;
  if (!startsWith(buf, i, 'HTTP/1.')) return 'decline';
  const minorByte = buf[i + 7];
  if ((minorByte !== 0x30 && minorByte !== 0x31) || buf[i + 8] !== CR || buf[i + 9] !== LF) return 'decline';
  const minor = minorByte === 0x31 ? 1 : 0;
  i += 10;

  // Header lines up to the blank line at `stop`.
  const headers: FastHeaders = {};
  let host = false;
  const connection: ConnectionTokens = { close: false, keepAlive: false };
  while (i < stop + 2) {
    const nameStart = i;
    const nameEnd = headerNameEnd(buf, nameStart);
    if (nameEnd < 0) return 'decline';
    i = nameEnd + 1;
    while (buf[i] === SP || buf[i] === HTAB) i++;
    const valueStart = i;
    i = fieldValueEnd(buf, i);
    if (buf[i] !== CR || buf[i + 1] !== LF) return 'decline';
    let valueEnd = i;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    i += 2;

    const known = knownName(buf, nameStart, nameEnd);
    if (known === undefined) continue;
    switch (known.kind) {
      case Kind.Decline:
        return 'decline';
      case Kind.Host:
        if (host) return 'decline';
        host = true;
        break;
      case Kind.Connection: {
        // Several Connection lines are one list; node:http reads them the same way. The value
        // is read up to the CR: a trailing tab matters to llhttp.
        if (!addConnectionTokens(buf.toString('latin1', valueStart, i - 2), connection)) return 'decline';
        break;
      }
      case Kind.Keep: {
        const key = known.name as keyof FastHeaders;
        if (headers[key] !== undefined) return 'decline';
        headers[key] = buf.toString('latin1', valueStart, valueEnd);
        break;
      }
    }
  }
  if (minor === 1 && !host) return 'decline';
  // llhttp_should_keep_alive: HTTP/1.1 unless close was listed, HTTP/1.0 if keep-alive was (even beside close).
  const keepAlive = minor === 1 ? !connection.close : connection.keepAlive;
  return { method, target, minor, keepAlive, headers, end: headEnd };
}
