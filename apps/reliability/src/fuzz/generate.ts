// Hostile HTTP requests, generated from a seed: malformed request lines, traversal-shaped paths,
// broken headers and Range values, raw garbage, pipelines. Every case is replayable from
// (seed, iteration).
import type { Rng } from '../lib/prng.js';

export interface FuzzCase {
  iteration: number;
  /** Which generator made it (for the report). */
  kind: string;
  bytes: Buffer;
  /** Per request, whether it is a HEAD (its response has no body). Empty for garbage. */
  heads: boolean[];
  /** Shut down the client's sending side right after the request (TCP half-close). */
  halfClose: boolean;
}

const NAMES = [
  'index.html', 'small.txt', 'data.json', 'medium.bin', 'large.bin', 'style.css', 'sub', 'page.txt', 'deeper', 'file.txt',
  'odd', 'foo..bar', 'sp%20ace.txt', 'h%C3%A9llo.txt', 'link-out.txt', 'link-in.bin', 'dir-out', 'secret.txt', 'etc', 'passwd',
  'shadow', 'hostname', '.env', '.git', 'config', '.htpasswd', 'up.txt', 'outside', 'root', 'style.css.gz',
];
const DOTS = ['..', '.', '...', '....', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '%252e%252e', '%c0%ae%c0%ae', '%e0%80%ae%e0%80%ae', '..%00', '..;', '%u002e%u002e', '%uff0e%uff0e', '．．', '..%2f', '..%5c'];
const SEPARATORS = ['/', '/', '/', '//', '/./', '%2f', '%2F', '\\', '%5c', '%5C', '%252f', '%c0%af', '%c1%9c', ';', '/%00/', '%09'];
const JUNK = ['%00', '%0a', '%0d', '%0d%0a', '%ff', '%fe%ff', '%', '%g1', '%%', '%2', '%e2%82', '%ed%a0%80', '%f4%90%80%80', '~', '*', ':', '@', '$', '\u00e9', '\u2215', '\x7f', ' ', '\t'];
const QUERIES = ['', '', '', '?', '?a=1', '?../../etc/passwd', '#frag', '?%00', '?x=%2e%2e%2f', '%3f.txt', '?' + 'q'.repeat(3000)];
const METHODS = ['GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'PATCH', 'PROPFIND', 'get', 'Get', 'G ET', 'GET\t', 'BREW', 'X'.repeat(300), '', 'GE\u0000T', '\u00c0GET'];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/3', 'HTTP/1.2', 'HTTP/11', 'http/1.1', 'HTTP/1.1 ', 'HTTP/', '', 'HTTP/1.1\u0000', 'ICY'];
const EOLS = ['\r\n', '\r\n', '\r\n', '\r\n', '\n', '\r', '\r\r\n', '\n\r'];
const HEADER_NAMES = ['Host', 'Range', 'If-Range', 'If-None-Match', 'If-Modified-Since', 'If-Match', 'If-Unmodified-Since', 'Accept-Encoding', 'Connection', 'Content-Length', 'Transfer-Encoding', 'Expect', 'Upgrade', 'Cookie', 'X-Forwarded-For', 'Origin', 'Access-Control-Request-Method', 'Authorization', 'Accept', 'TE', 'Keep-Alive', 'Content-Type'];

function percentEncodeBytes(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += '%' + rng.int(0, 255).toString(16).padStart(2, '0');
  return s;
}

function rawBytesString(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(0, 255));
  return s;
}

/** A path made of known names, traversal tokens, encoded separators and junk. */
export function fuzzPath(rng: Rng): string {
  const parts: string[] = [rng.chance(0.9) ? '/' : rng.pick(['', 'http://evil.test/', 'http://127.0.0.1/', '//evil.test/', '*', 'file:///', '\\\\', '%2f'])];
  const tokens = rng.int(1, 9);
  for (let i = 0; i < tokens; i++) {
    const r = rng.float();
    if (r < 0.35) parts.push(rng.pick(NAMES));
    else if (r < 0.65) parts.push(rng.pick(DOTS));
    else if (r < 0.85) parts.push(rng.pick(JUNK));
    else if (r < 0.93) parts.push(percentEncodeBytes(rng, rng.int(1, 6)));
    else parts.push(rawBytesString(rng, rng.int(1, 4)));
    if (i < tokens - 1) parts.push(rng.pick(SEPARATORS));
  }
  if (rng.chance(0.02)) parts.push('a'.repeat(rng.int(250, 9000)));
  parts.push(rng.pick(QUERIES));
  return parts.join('');
}

function number(rng: Rng): string {
  return rng.weighted<() => string>([
    [() => String(rng.int(0, 5_000_000)), 6],
    [() => String(rng.int(0, 20)), 3],
    [() => '9'.repeat(rng.int(16, 40)), 1],
    [() => '-' + rng.int(0, 100), 1],
    [() => '0x' + rng.int(0, 255).toString(16), 1],
    [() => ' ' + rng.int(0, 100) + ' ', 1],
    [() => '1e3', 1],
    [() => '', 1],
  ])();
}

/** Range header values: valid, unsatisfiable, malformed, huge, many. */
export function fuzzRange(rng: Rng): string {
  const spec = () =>
    rng.weighted<() => string>([
      [() => `${number(rng)}-${number(rng)}`, 6],
      [() => `-${number(rng)}`, 2],
      [() => `${number(rng)}-`, 2],
      [() => `${number(rng)}`, 1],
      [() => '-', 1],
      [() => rawBytesString(rng, rng.int(1, 5)), 1],
    ])();
  const count = rng.weighted([[1, 8], [2, 3], [rng.int(3, 10), 2], [rng.int(60, 200), 1]] as const);
  const specs = Array.from({ length: count }, spec).join(rng.pick([',', ', ', ',,', ' , ', ';']));
  const unit = rng.weighted([['bytes=', 12], ['Bytes=', 1], ['bytes = ', 1], ['items=', 1], ['bytes', 1], ['', 1], ['bytes==', 1]] as const);
  return unit + specs;
}

function headerValue(rng: Rng, name: string): string {
  switch (name) {
    case 'Range':
      return fuzzRange(rng);
    case 'If-Range':
      return rng.pick(['"abc"', 'W/"x"', 'Thu, 01 Jan 1970 00:00:00 GMT', 'garbage', '', '"' + 'e'.repeat(200) + '"']);
    case 'If-None-Match':
    case 'If-Match':
      return rng.pick(['*', '"x"', 'W/"x", "y"', '', ',,,', '"unterminated', rawBytesString(rng, 5)]);
    case 'If-Modified-Since':
    case 'If-Unmodified-Since':
      return rng.pick(['Thu, 01 Jan 1970 00:00:00 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT', 'yesterday', '', '-1', '2025-13-45']);
    case 'Accept-Encoding':
      return rng.pick(['gzip, br', 'br;q=0', 'gzip;q=abc', '*', 'identity;q=0, *;q=0', ',,', 'x'.repeat(5000)]);
    case 'Content-Length':
      return rng.pick(['0', '5', '-1', '1e3', '0x10', '99999999999999999999', '5, 6', ' 3', '']);
    case 'Transfer-Encoding':
      return rng.pick(['chunked', 'gzip, chunked', 'chunked, gzip', 'identity', 'xchunked', 'chunked\t', '']);
    case 'Connection':
      return rng.pick(['close', 'keep-alive', 'upgrade', 'Upgrade, HTTP2-Settings', 'x'.repeat(100), '']);
    case 'Expect':
      return rng.pick(['100-continue', '200-ok', '']);
    case 'Upgrade':
      return rng.pick(['h2c', 'websocket', 'TLS/1.0', '']);
    default:
      return rng.pick(['', 'x', 'a'.repeat(rng.int(1, 9000)), rawBytesString(rng, rng.int(1, 30)), '\u00ff\u00fe', 'v\u0000v']);
  }
}

interface RequestParts {
  method: string;
  target: string;
  version: string;
  headers: Array<[string, string]>;
  eol: string;
  body: string;
}

function requestText(p: RequestParts): string {
  const line = p.version === '' ? `${p.method} ${p.target}` : `${p.method} ${p.target} ${p.version}`;
  return line + p.eol + p.headers.map(([k, v]) => `${k}: ${v}${p.eol}`).join('') + p.eol + p.body;
}

/** A request that is well-formed except for what the strategy breaks. */
function baseRequest(rng: Rng): RequestParts {
  return { method: 'GET', target: '/' + rng.pick(['index.html', 'small.txt', 'medium.bin', 'large.bin', 'sub/page.txt', 'style.css']), version: 'HTTP/1.1', headers: [['Host', 'fuzz']], eol: '\r\n', body: '' };
}

function mutateHeaders(rng: Rng, p: RequestParts): void {
  const n = rng.weighted([[1, 6], [rng.int(2, 6), 3], [rng.int(100, 150), 1]] as const);
  for (let i = 0; i < n; i++) {
    const name = rng.weighted<() => string>([
      [() => rng.pick(HEADER_NAMES), 10],
      [() => rng.pick(HEADER_NAMES).toLowerCase(), 2],
      [() => 'X-' + rawBytesString(rng, rng.int(1, 8)), 1],
      [() => rng.pick(['', ' Host', 'Host ', 'Ho st', 'Host\u0000', 'Range:', '\tX']), 1],
    ])();
    p.headers.push([name, headerValue(rng, name.trim().replace(/:$/, ''))]);
  }
  if (rng.chance(0.1)) p.headers.splice(0, 1); // no Host
  if (rng.chance(0.05)) p.headers.push(['X-Folded', 'a' + p.eol + ' continued']); // obs-fold
  if (rng.chance(0.03)) p.headers.push(['X-Big', 'b'.repeat(rng.int(15_000, 70_000))]);
}

/** Strategies with their weights. Each returns the request bytes and HEAD flags. */
function generators(rng: Rng): Array<[() => { kind: string; text: string; heads: boolean[] }, number]> {
  return [
    [
      () => {
        const p = baseRequest(rng);
        p.target = fuzzPath(rng);
        if (rng.chance(0.2)) p.method = 'HEAD';
        return { kind: 'path', text: requestText(p), heads: [p.method === 'HEAD'] };
      },
      40,
    ],
    [
      () => {
        const p = baseRequest(rng);
        p.headers.push(['Range', fuzzRange(rng)]);
        if (rng.chance(0.3)) p.headers.push(['If-Range', headerValue(rng, 'If-Range')]);
        if (rng.chance(0.15)) p.method = 'HEAD';
        return { kind: 'range', text: requestText(p), heads: [p.method === 'HEAD'] };
      },
      20,
    ],
    [
      () => {
        const p = baseRequest(rng);
        mutateHeaders(rng, p);
        if (rng.chance(0.3)) p.target = fuzzPath(rng);
        return { kind: 'headers', text: requestText(p), heads: [false] };
      },
      15,
    ],
    [
      () => {
        const p = baseRequest(rng);
        p.method = rng.pick(METHODS);
        p.version = rng.pick(VERSIONS);
        p.eol = rng.pick(EOLS);
        if (rng.chance(0.3)) p.target = rng.pick(['', ' ', '/ /', '/\u0000', 'http://x', 'x:80', '*', '/' + ' '.repeat(3) + 'x']);
        if (rng.chance(0.3)) p.target = fuzzPath(rng);
        if (p.method === 'POST' || p.method === 'PUT') {
          const body = rawBytesString(rng, rng.int(0, 200));
          if (rng.chance(0.5)) p.headers.push(['Content-Length', String(body.length)]);
          else p.headers.push(['Transfer-Encoding', 'chunked']);
          p.body = rng.chance(0.5) ? body : `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
        }
        return { kind: 'request-line', text: requestText(p), heads: [p.method === 'HEAD'] };
      },
      10,
    ],
    [() => ({ kind: 'garbage', text: rawBytesString(rng, rng.int(1, 2000)), heads: [] }), 5],
    [
      () => {
        const n = rng.int(2, 5);
        const texts: string[] = [];
        const heads: boolean[] = [];
        for (let i = 0; i < n; i++) {
          const p = baseRequest(rng);
          if (rng.chance(0.5)) p.target = fuzzPath(rng);
          if (rng.chance(0.3)) p.headers.push(['Range', fuzzRange(rng)]);
          if (rng.chance(0.2)) p.method = 'HEAD';
          texts.push(requestText(p));
          heads.push(p.method === 'HEAD');
        }
        return { kind: 'pipeline', text: texts.join(''), heads };
      },
      10,
    ],
  ];
}

export function generateCase(rng: Rng, iteration: number): FuzzCase {
  const made = rng.weighted(generators(rng))();
  return { iteration, kind: made.kind, bytes: Buffer.from(made.text, 'latin1'), heads: made.heads, halfClose: rng.chance(0.1) };
}
