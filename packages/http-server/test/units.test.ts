// Pure pieces checked directly: request-path parsing, Accept-Encoding, request framing, sizes, CLI parsing.
import { describe, expect, it } from 'vitest';
import { parseRequestPath, encodePath } from '../src/static/request-path.js';
import { chooseEncoding } from '../src/static/accept-encoding.js';
import { matchesStrong, matchesWeak } from '../src/static/conditional.js';
import { unknownBodyLength } from '../src/static/request-framing.js';
import { parseSize } from '../src/size.js';
import { parseCli, UsageError } from '../src/cli/args.js';
import { MAX_HEAD_BYTES, readRequestHead, type RequestHead } from '../src/fast/request-head.js';

describe('parseRequestPath', () => {
  it('splits, decodes and merges', () => {
    expect(parseRequestPath('/a/b%20c//./d/')).toEqual({ ok: true, segments: ['a', 'b c', 'd'], trailingSlash: true });
    expect(parseRequestPath('/')).toEqual({ ok: true, segments: [], trailingSlash: true });
    expect(parseRequestPath('/x.txt')).toEqual({ ok: true, segments: ['x.txt'], trailingSlash: false });
  });

  it('refuses what could escape or confuse', () => {
    for (const bad of ['', 'a', '/..', '/a/../b', '/%2e%2e/x', '/a%5cb', '/a\\b', '/a%00', '/%c0%ae', '/%', '/%zz', `/${'a'.repeat(256)}`, `/${'a/'.repeat(2100)}`]) {
      expect(parseRequestPath(bad), bad.slice(0, 20)).toEqual({ ok: false, status: 400 });
    }
  });

  it('encodes canonical paths for redirects', () => {
    expect(encodePath(['a b', 'c?d'], true)).toBe('/a%20b/c%3Fd/');
    expect(encodePath([], false)).toBe('/');
  });
});

describe('chooseEncoding', () => {
  it('follows qualities and server preference', () => {
    expect(chooseEncoding('gzip, deflate, br', ['br', 'gzip'])).toBe('br');
    expect(chooseEncoding('gzip', ['br', 'gzip'])).toBe('gzip');
    expect(chooseEncoding('x-gzip', ['gzip'])).toBe('gzip');
    expect(chooseEncoding('br;q=0.1, gzip;q=0.8', ['br', 'gzip'])).toBe('gzip');
    expect(chooseEncoding('br;q=0, gzip;q=0', ['br', 'gzip'])).toBeNull();
    expect(chooseEncoding('*', ['br', 'gzip'])).toBe('br');
    expect(chooseEncoding('*;q=0, identity', ['br'])).toBeNull();
    expect(chooseEncoding('identity;q=1, gzip;q=0.5', ['gzip'])).toBeNull();
    expect(chooseEncoding(undefined, ['br'])).toBeNull();
    expect(chooseEncoding('deflate', ['br', 'gzip'])).toBeNull();
  });
});

describe('entity tag comparison', () => {
  it('strong for If-Match, weak for If-None-Match', () => {
    expect(matchesStrong('"a", "b"', '"b"')).toBe(true);
    expect(matchesStrong('W/"b"', '"b"')).toBe(false);
    expect(matchesWeak('W/"b"', '"b"')).toBe(true);
    expect(matchesWeak('"c"', '"b"')).toBe(false);
    expect(matchesStrong('*', '"b"')).toBe(true);
  });
});

describe('unknownBodyLength (RFC 9112 6.1, by node:http parser\'s rule)', () => {
  it('accepts no Transfer-Encoding and any that ends in chunked', () => {
    for (const te of [undefined, 'chunked', 'CHUNKED', 'gzip, chunked', 'gzip,chunked', ' chunked ', 'gzip,\tchunked', ['gzip', 'chunked']]) {
      expect(unknownBodyLength(te), String(te)).toBe(false);
    }
  });
  it('refuses a last coding that is not exactly chunked', () => {
    for (const te of ['', 'xchunked', 'identity', 'gzip', 'chunked, gzip', 'chunked;x=1', 'chunked, ', ' , ', 'chunked\xa0', ['chunked', 'gzip']]) {
      expect(unknownBodyLength(te), JSON.stringify(te)).toBe(true);
    }
  });
});

describe('parseSize', () => {
  it('reads binary units', () => {
    expect(parseSize('256MB')).toBe(256 * 1024 * 1024);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('64k')).toBe(65536);
    expect(parseSize('0')).toBe(0);
    expect(parseSize('1.5m')).toBe(1.5 * 1024 * 1024);
    expect(parseSize('lots')).toBeNull();
    expect(parseSize('10 parsecs')).toBeNull();
  });
});

describe('parseCli', () => {
  it('applies the defaults', () => {
    const parsed = parseCli([]);
    expect(parsed.kind).toBe('run');
    if (parsed.kind !== 'run') return;
    expect(parsed.config).toMatchObject({
      root: '.', port: 8080, host: '127.0.0.1', list: false, dotfiles: 'deny', symlinks: 'inside', engine: 'auto',
      cacheBytes: 256 * 1024 * 1024, zeroCopy: true, workers: 1, timeoutMs: 60_000, stats: false, quiet: false, precompressed: true,
    });
  });

  it('reads flags and throws UsageError on bad ones', () => {
    const parsed = parseCli(['www', '-p', '0', '--host', '::1', '--no-zc', '--engine', 'copy', '--cache', '1g', '--timeout', '0.5', '-q']);
    expect(parsed.kind === 'run' && parsed.config).toMatchObject({ root: 'www', port: 0, host: '::1', zeroCopy: false, engine: 'copy', cacheBytes: 1024 ** 3, timeoutMs: 500, quiet: true });
    expect(parseCli(['--help']).kind).toBe('help');
    expect(() => parseCli(['--nope'])).toThrow(UsageError);
    expect(() => parseCli(['--port'])).toThrow(UsageError);
    expect(() => parseCli(['--list=yes'])).toThrow(UsageError);
  });
});

describe('readRequestHead (the fast path reads only plain GET/HEAD heads)', () => {
  const read = (text: string) => readRequestHead(Buffer.from(text, 'latin1'), 0, Buffer.byteLength(text, 'latin1'));

  it('reads method, target, version, persistence and the headers it uses', () => {
    const text = 'HEAD /a/b.txt?x=1 HTTP/1.1\r\nhost: t\r\nACCEPT-ENCODING:  gzip, br \r\nIf-None-Match: "x"\r\nX-Other: y\r\n\r\nGET /next';
    const head = read(text) as RequestHead;
    expect(head).toMatchObject({ method: 'HEAD', target: '/a/b.txt?x=1', minor: 1, keepAlive: true });
    expect(head.headers).toEqual({ 'accept-encoding': 'gzip, br', 'if-none-match': '"x"' });
    expect(text.slice(head.end)).toBe('GET /next');
    expect((read('GET / HTTP/1.0\r\n\r\n') as RequestHead).keepAlive).toBe(false);
    expect((read('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n') as RequestHead).keepAlive).toBe(true);
    expect((read('GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n') as RequestHead).keepAlive).toBe(false);
  });

  it('waits for the blank line, and declines a head longer than node:http allows', () => {
    expect(read('GET / HTTP/1.1\r\nHost: t\r\n')).toBe('incomplete');
    expect(read('GET / HTTP/1.1\r\nHost: t\r\n\r')).toBe('incomplete');
    expect(read('GET / HTTP/1.1\r\nHost: t\r\nX-Long: abc')).toBe('incomplete');
    // Already invalid: node:http can answer now rather than at the head timeout.
    expect(read('GET / HTTP/1.1\r\nHost : t\r\n')).toBe('decline');
    expect(read('GET / HTTP/1.1\r\nHost: t\r\n folded\r\n')).toBe('decline');
    expect(read('GET / HTTP/1.1\r\nX: a\x01b\r\nHost')).toBe('decline');
    expect(read(`GET / HTTP/1.1\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}`)).toBe('decline');
    expect(read(`GET / HTTP/1.1\r\nHost: t\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`)).toBe('decline');
  });

  it('declines anything that is not plain', () => {
    const declined = [
      'POST / HTTP/1.1\r\nHost: t\r\n\r\n',
      'GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\n',
      'GET /a#f HTTP/1.1\r\nHost: t\r\n\r\n',
      'GET / HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\nrange: bytes=2-3\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nX : a\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nX: a\nY: b\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nX: a\x7fb\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: t\r\nIf-Match: "a"\r\nIf-Match: "b"\r\n\r\n',
      '\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n',
      'GET  / HTTP/1.1\r\nHost: t\r\n\r\n',
      'GET / HTTP/1.1 \r\nHost: t\r\n\r\n',
      'GET / HTTP/1.2\r\nHost: t\r\n\r\n',
    ];
    for (const text of declined) expect(read(text), JSON.stringify(text)).toBe('decline');
  });
});
