// Pure pieces checked directly: request-path parsing, Accept-Encoding, sizes, CLI parsing.
import { describe, expect, it } from 'vitest';
import { parseRequestPath, encodePath } from '../src/static/request-path.js';
import { chooseEncoding } from '../src/static/accept-encoding.js';
import { matchesStrong, matchesWeak } from '../src/static/conditional.js';
import { parseSize } from '../src/size.js';
import { parseCli, UsageError } from '../src/cli/args.js';

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
