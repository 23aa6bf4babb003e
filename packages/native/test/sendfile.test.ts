import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { evictFromPageCache } from '@zcsend/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { binding, collect, fdOf, native, pattern, sha256, tcpPair, type TcpPair } from './helpers.js';

// sendfile is a plain syscall: it needs the addon, not a ring.
describe.skipIf(!binding)('sendfile', () => {
  let dir = '';
  let file = '';
  let content: Buffer;
  let fileFd = -1;
  let pair: TcpPair | null = null;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-native-sendfile-'));
    file = path.join(dir, 'body.bin');
    content = pattern(2 * 1024 * 1024 + 777, 7);
    fs.writeFileSync(file, content);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await pair?.close();
    pair = null;
    if (fileFd >= 0) fs.closeSync(fileFd);
    fileFd = -1;
  });

  it('sends a range from an explicit offset without moving the file position', async () => {
    const b = native();
    pair = await tcpPair();
    fileFd = fs.openSync(file, 'r');
    const out = fdOf(pair.client);
    const start = 12345;
    const end = content.length - 99;
    const received = collect(pair.server, end - start);
    for (let offset = start; offset < end;) {
      const n = b.sendfile(out, fileFd, offset, end - offset);
      if (n === -b.constants.errno.EAGAIN) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      expect(n).toBeGreaterThan(0);
      offset += n;
    }
    expect(sha256(await received)).toBe(sha256(content.subarray(start, end)));
    // The fd's own position is untouched: a plain read still starts at 0.
    const head = Buffer.alloc(16);
    expect(fs.readSync(fileFd, head, 0, 16, null)).toBe(16);
    expect(head.equals(content.subarray(0, 16))).toBe(true);
  });

  it('returns 0 at end of file, -EAGAIN on a full non-blocking socket, -errno on bad fds', async () => {
    const b = native();
    const { EAGAIN, EBADF } = b.constants.errno;
    pair = await tcpPair();
    fileFd = fs.openSync(file, 'r');
    const out = fdOf(pair.client);
    expect(b.sendfile(out, fileFd, content.length, 10)).toBe(0);
    // Nobody reads the other end: libuv's socket is non-blocking, so it fills and pushes back.
    pair.server.pause();
    let last = 0;
    for (let i = 0; i < 1000 && last !== -EAGAIN; i++) last = b.sendfile(out, fileFd, 0, content.length);
    expect(last).toBe(-EAGAIN);
    // Far above any open descriptor (and above the usual RLIMIT_NOFILE): never a file.
    expect(b.sendfile(out, 1_000_000, 0, 1)).toBe(-EBADF);
    expect(() => b.sendfile(out, fileFd, -1, 1)).toThrow(RangeError);
    expect(() => b.sendfile(out, fileFd, 0, 2 ** 32)).toThrow(RangeError);
  });

  it('sendMore writes a slice of a buffer that the sendfile after it completes, in order', async () => {
    const b = native();
    pair = await tcpPair();
    fileFd = fs.openSync(file, 'r');
    const out = fdOf(pair.client);
    const framing = Buffer.from('xxHTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\nyy', 'latin1');
    const head = framing.subarray(2, framing.length - 2);
    const body = content.subarray(100, 70_100);
    const received = collect(pair.server, head.length + body.length);
    // A slice: offset and length select the bytes, not the whole buffer.
    expect(b.sendMore(out, framing, 2, head.length)).toBe(head.length);
    let offset = 100;
    while (offset < 70_100) {
      const n = b.sendfile(out, fileFd, offset, 70_100 - offset);
      if (n === -b.constants.errno.EAGAIN) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      expect(n).toBeGreaterThan(0);
      offset += n;
    }
    expect(sha256(await received)).toBe(sha256(Buffer.concat([head, body])));
  });

  it('sendMore: -EAGAIN on a full socket, -errno on a bad fd, range errors thrown', async () => {
    const b = native();
    const { EAGAIN, EBADF, ENOTSOCK } = b.constants.errno;
    pair = await tcpPair();
    const out = fdOf(pair.client);
    pair.server.pause();
    const chunk = pattern(256 * 1024, 3);
    let last = 0;
    for (let i = 0; i < 10_000 && last !== -EAGAIN; i++) last = b.sendMore(out, chunk, 0, chunk.length);
    expect(last).toBe(-EAGAIN);
    expect(b.sendMore(1_000_000, chunk, 0, 1)).toBe(-EBADF);
    fileFd = fs.openSync(file, 'r');
    expect(b.sendMore(fileFd, chunk, 0, 1)).toBe(-ENOTSOCK);
    expect(() => b.sendMore(out, chunk, 0, chunk.length + 1)).toThrow(RangeError);
    expect(() => b.sendMore(out, chunk, -1, 1)).toThrow(RangeError);
    expect(() => b.sendMore(out, 'text' as unknown as Uint8Array, 0, 1)).toThrow(TypeError);
  });

  it('uncachedPages: 0 for pages in the page cache, the missing count once they are dropped; -errno and range errors', () => {
    const b = native();
    const { EBADF, ENOSYS } = b.constants.errno;
    const [major = 0, minor = 0] = os.release().split('.').map(Number);
    fileFd = fs.openSync(file, 'r');
    if (major < 6 || (major === 6 && minor < 5)) {
      expect(b.uncachedPages(fileFd, 0, content.length)).toBe(-ENOSYS);
      return;
    }
    // A file of its own, never sent: the other tests' sendfile leaves skbs that may still hold
    // references to the shared file's pages (freed later, on the CPU that built them), and
    // DONTNEED cannot drop a page that something else holds.
    fs.closeSync(fileFd);
    const own = path.join(dir, 'cachestat.bin');
    fs.writeFileSync(own, content);
    fileFd = fs.openSync(own, 'r');
    const page = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }));
    const pages = Math.ceil(content.length / page);
    fs.readFileSync(own);
    expect(b.uncachedPages(fileFd, 0, content.length)).toBe(0);
    // Written back, then dropped from the cache.
    let uncached = 0;
    evictFromPageCache(own, () => (uncached = b.uncachedPages(fileFd, 0, content.length)) === pages);
    expect(uncached, 'pages left in the page cache after DONTNEED (a tmpfs TMPDIR keeps them)').toBe(pages);
    // Whole pages count: one byte each side of a boundary touches two pages.
    expect(b.uncachedPages(fileFd, page - 1, 2)).toBe(2);
    const buf = Buffer.alloc(page);
    fs.readSync(fileFd, buf, 0, page, 5 * page);
    expect(b.uncachedPages(fileFd, 5 * page, page)).toBe(0);
    expect(b.uncachedPages(fileFd, 0, content.length)).toBeLessThan(pages);
    expect(b.uncachedPages(1_000_000, 0, 1)).toBe(-EBADF);
    expect(() => b.uncachedPages(fileFd, 0, 0)).toThrow(RangeError);
    expect(() => b.uncachedPages(fileFd, -1, 1)).toThrow(RangeError);
  });
});
