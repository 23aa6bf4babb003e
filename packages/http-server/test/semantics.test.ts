// HTTP semantics of the file server against a real server and real clients, in both modes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Agent, request } from 'undici';
import { createFileServer, type FileServerOptions } from '../src/index.js';
import { MODE, URING, makeTree, rawExchange, rawGet, sha256, startServer, waitFor, serverQuiet, type Running, type Tree } from './helpers.js';

let tree: Tree;
let server: Running;
const agent = new Agent({ keepAliveTimeout: 10_000, pipelining: 1 });

async function get(p: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'POST' | 'OPTIONS' | 'DELETE' = 'GET') {
  const res = await request(server.url.replace(/\/$/, '') + p, { method, headers, dispatcher: agent });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers as Record<string, string | undefined>, body };
}

beforeAll(async () => {
  tree = makeTree();
  server = await startServer({ root: tree.root, maxAge: 60, statCacheMs: 0 });
});

afterAll(async () => {
  try {
    await agent.close();
    await server?.close();
  } finally {
    tree?.cleanup();
  }
});

describe(`file server HTTP semantics (${MODE})`, () => {
  it('serves every size class byte-exact, with Content-Length and a charset for text', async () => {
    for (const name of ['small.txt', 'medium.bin', 'large.bin', 'index.html', 'data.json', 'app.js']) {
      const res = await get(`/${name}`);
      expect(res.status, name).toBe(200);
      expect(sha256(res.body), name).toBe(sha256(tree.files[name]!));
      expect(res.headers['content-length']).toBe(String(tree.files[name]!.length));
      expect(res.headers['accept-ranges']).toBe('bytes');
    }
    expect((await get('/small.txt')).headers['content-type']).toBe('text/plain; charset=utf-8');
    expect((await get('/index.html')).headers['content-type']).toBe('text/html; charset=utf-8');
    expect((await get('/data.json')).headers['content-type']).toBe('application/json; charset=utf-8');
    expect((await get('/medium.bin')).headers['content-type']).toBe('application/octet-stream');
    expect((await get('/app.js', { 'accept-encoding': 'identity' })).headers['content-type']).toBe('text/javascript; charset=utf-8');
    const empty = await get('/empty.txt');
    expect(empty.status).toBe(200);
    expect(empty.body.length).toBe(0);
    expect(empty.headers['content-length']).toBe('0');
  });

  it('serves index.html for / and for directories, and redirects /dir to /dir/ keeping the query', async () => {
    const home = await get('/');
    expect(home.status).toBe(200);
    expect(home.body.toString()).toBe(tree.files['index.html']!.toString());
    const sub = await get('/sub/');
    expect(sub.body.toString()).toBe(tree.files['sub/index.html']!.toString());
    const redirect = await get('/sub?x=1&y=2');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('/sub/?x=1&y=2');
    // Several leading slashes must not become a protocol-relative redirect to another host.
    const sneaky = await rawGet(server.port, '//evil.example//sub');
    expect(sneaky.status).toBe(404);
    const merged = await rawGet(server.port, '//sub');
    expect(merged.status).toBe(301);
    expect(merged.headers.location).toBe('/sub/');
    // Absolute-form targets are served by their path.
    const absolute = await rawGet(server.port, 'http://test/sub/page.txt');
    expect(absolute.body.toString()).toBe('sub page\n');
    expect((await rawGet(server.port, 'http://test')).body.toString()).toBe(tree.files['index.html']!.toString());
    // A directory without index and listing off: forbidden, as nginx does.
    expect((await get('/nested/')).status).toBe(403);
    // A file with a trailing slash is not a directory.
    expect((await get('/small.txt/')).status).toBe(404);
  });

  it('HEAD has the GET headers and no body', async () => {
    for (const name of ['small.txt', 'large.bin', 'empty.txt']) {
      const head = await rawExchange(server.port, `HEAD /${name} HTTP/1.1\r\nHost: t\r\n\r\nGET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 2, [true, false]);
      head.socket.destroy();
      expect(head.responses[0]!.status).toBe(200);
      expect(head.responses[0]!.headers['content-length']).toBe(String(tree.files[name]!.length));
      // The next response on the connection starts right after the HEAD headers: no stray body bytes.
      expect(head.responses[1]!.status).toBe(200);
      expect(sha256(head.responses[1]!.body)).toBe(sha256(tree.files['small.txt']!));
    }
    const viaUndici = await get('/large.bin', {}, 'HEAD');
    expect(viaUndici.body.length).toBe(0);
    expect(viaUndici.headers['content-length']).toBe(String(tree.files['large.bin']!.length));
  });

  it('answers single ranges with 206 and Content-Range, for inline and file-engine bodies', async () => {
    for (const name of ['small.txt', 'medium.bin', 'large.bin']) {
      const data = tree.files[name]!;
      const cases: Array<[string, number, number]> = [
        ['bytes=0-0', 0, 1],
        ['bytes=10-99', 10, 100],
        [`bytes=${data.length - 50}-`, data.length - 50, data.length],
        ['bytes=-25', data.length - 25, data.length],
        [`bytes=5-${data.length + 1000}`, 5, data.length],
      ];
      for (const [range, start, end] of cases) {
        const res = await get(`/${name}`, { range });
        expect(res.status, `${name} ${range}`).toBe(206);
        expect(res.headers['content-range']).toBe(`bytes ${start}-${end - 1}/${data.length}`);
        expect(res.headers['content-length']).toBe(String(end - start));
        expect(sha256(res.body)).toBe(sha256(data.subarray(start, end)));
      }
    }
  });

  it('answers several ranges with multipart/byteranges, byte-exact', async () => {
    for (const name of ['small.txt', 'large.bin']) {
      const data = tree.files[name]!;
      const res = await get(`/${name}`, { range: 'bytes=0-9,100-199,-20' });
      expect(res.status).toBe(206);
      const type = res.headers['content-type']!;
      const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(type)?.[1];
      expect(boundary).toBeTruthy();
      expect(res.headers['content-length']).toBe(String(res.body.length));
      const parts = parseMultipart(res.body, boundary!);
      const expected: Array<[number, number]> = [[0, 10], [100, 200], [data.length - 20, data.length]];
      expect(parts.length).toBe(3);
      parts.forEach((part, i) => {
        const [start, end] = expected[i]!;
        expect(part.headers['content-range']).toBe(`bytes ${start}-${end - 1}/${data.length}`);
        expect(part.headers['content-type']).toBe(name.endsWith('.txt') ? 'text/plain; charset=utf-8' : 'application/octet-stream');
        expect(sha256(part.body)).toBe(sha256(data.subarray(start, end)));
      });
    }
    // Overlapping ranges are merged into one.
    const merged = await get('/medium.bin', { range: 'bytes=0-99,50-149' });
    expect(merged.status).toBe(206);
    expect(merged.headers['content-range']).toBe(`bytes 0-149/${tree.files['medium.bin']!.length}`);
  });

  it('answers unsatisfiable ranges with 416 and Content-Range: bytes */size; ignores malformed ones', async () => {
    const size = tree.files['medium.bin']!.length;
    const res = await get('/medium.bin', { range: `bytes=${size}-` });
    expect(res.status).toBe(416);
    expect(res.headers['content-range']).toBe(`bytes */${size}`);
    expect(res.body.toString()).not.toContain(tree.root);
    const malformed = await get('/medium.bin', { range: 'bytes=abc' });
    expect(malformed.status).toBe(200);
    expect(malformed.body.length).toBe(size);
    const otherUnit = await get('/medium.bin', { range: 'items=0-5' });
    expect(otherUnit.status).toBe(200);
  });

  it('honours If-Range by ETag and by date', async () => {
    const full = await get('/large.bin');
    const etag = full.headers.etag!;
    const lastModified = full.headers['last-modified']!;
    const data = tree.files['large.bin']!;
    const byTag = await get('/large.bin', { range: 'bytes=0-99', 'if-range': etag });
    expect(byTag.status).toBe(206);
    expect(sha256(byTag.body)).toBe(sha256(data.subarray(0, 100)));
    const byDate = await get('/large.bin', { range: 'bytes=0-99', 'if-range': lastModified });
    expect(byDate.status).toBe(206);
    const stale = await get('/large.bin', { range: 'bytes=0-99', 'if-range': '"not-the-tag"' });
    expect(stale.status).toBe(200);
    expect(sha256(stale.body)).toBe(sha256(data));
    const weak = await get('/large.bin', { range: 'bytes=0-99', 'if-range': `W/${etag}` });
    expect(weak.status).toBe(200);
    const oldDate = await get('/large.bin', { range: 'bytes=0-99', 'if-range': 'Mon, 01 Jan 2001 00:00:00 GMT' });
    expect(oldDate.status).toBe(200);
  });

  it('has strong ETags and Last-Modified; 304 on If-None-Match / If-Modified-Since; 412 on If-Match / If-Unmodified-Since', async () => {
    const first = await get('/medium.bin');
    const etag = first.headers.etag!;
    expect(etag).toMatch(/^"[^"]+"$/);
    const lastModified = first.headers['last-modified']!;
    expect(new Date(lastModified).getTime()).toBe(Math.floor(fs.statSync(path.join(tree.root, 'medium.bin')).mtimeMs / 1000) * 1000);

    const notModified = await get('/medium.bin', { 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    expect(notModified.headers.etag).toBe(etag);
    expect(notModified.headers['content-length']).toBeUndefined();
    expect((await get('/medium.bin', { 'if-none-match': `"x", W/${etag}` })).status).toBe(304);
    expect((await get('/medium.bin', { 'if-none-match': '*' })).status).toBe(304);
    expect((await get('/medium.bin', { 'if-none-match': '"other"' })).status).toBe(200);
    expect((await get('/medium.bin', { 'if-modified-since': lastModified })).status).toBe(304);
    expect((await get('/medium.bin', { 'if-modified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' })).status).toBe(200);
    // If-None-Match wins over If-Modified-Since.
    expect((await get('/medium.bin', { 'if-none-match': '"other"', 'if-modified-since': lastModified })).status).toBe(200);
    expect((await get('/medium.bin', { 'if-modified-since': 'garbage' })).status).toBe(200);

    expect((await get('/medium.bin', { 'if-match': etag })).status).toBe(200);
    expect((await get('/medium.bin', { 'if-match': '*' })).status).toBe(200);
    expect((await get('/medium.bin', { 'if-match': '"other"' })).status).toBe(412);
    expect((await get('/medium.bin', { 'if-match': `W/${etag}` })).status).toBe(412);
    expect((await get('/medium.bin', { 'if-unmodified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' })).status).toBe(412);
    expect((await get('/medium.bin', { 'if-unmodified-since': lastModified })).status).toBe(200);
    // 304 for a HEAD too.
    expect((await get('/medium.bin', { 'if-none-match': etag }, 'HEAD')).status).toBe(304);
  });

  it('chooses precompressed siblings by Accept-Encoding, with Vary and per-representation ETags', async () => {
    const br = await get('/style.css', { 'accept-encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(br.headers.vary).toBe('Accept-Encoding');
    expect(sha256(br.body)).toBe(sha256(tree.files['style.css.br']!));
    const gz = await get('/style.css', { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(sha256(gz.body)).toBe(sha256(tree.files['style.css.gz']!));
    const plain = await get('/style.css', { 'accept-encoding': 'identity' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.vary).toBe('Accept-Encoding');
    expect(sha256(plain.body)).toBe(sha256(tree.files['style.css']!));
    const none = await get('/style.css');
    expect(none.headers['content-encoding']).toBeUndefined();
    const refused = await get('/style.css', { 'accept-encoding': 'br;q=0, gzip;q=0' });
    expect(refused.headers['content-encoding']).toBeUndefined();
    const preferGzip = await get('/style.css', { 'accept-encoding': 'br;q=0.5, gzip;q=0.9' });
    expect(preferGzip.headers['content-encoding']).toBe('gzip');
    expect(new Set([br.headers.etag, gz.headers.etag, plain.headers.etag]).size).toBe(3);
    // A sibling larger than the inline limit goes through the file engine; ranges apply to it.
    const bigGz = await get('/app.js', { 'accept-encoding': 'gzip', range: 'bytes=100-5099' });
    expect(bigGz.status).toBe(206);
    expect(bigGz.headers['content-encoding']).toBe('gzip');
    expect(sha256(bigGz.body)).toBe(sha256(tree.files['app.js.gz']!.subarray(100, 5100)));
    // A file without siblings does not vary.
    expect((await get('/medium.bin', { 'accept-encoding': 'gzip' })).headers.vary).toBeUndefined();
  });

  it('sends Cache-Control from maxAge', async () => {
    expect((await get('/small.txt')).headers['cache-control']).toBe('public, max-age=60');
  });

  it('refuses other methods with 405 and Allow, and errors carry no paths or stack traces', async () => {
    for (const method of ['POST', 'DELETE', 'OPTIONS'] as const) {
      const res = await get('/small.txt', {}, method);
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD');
    }
    for (const p of ['/missing.txt', '/.secret', '/%2e%2e/x', '/link-outside.txt']) {
      const res = await rawGet(server.port, p);
      expect([400, 403, 404]).toContain(res.status);
      const text = res.body.toString();
      expect(text).not.toContain(tree.dir);
      expect(text).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
      expect(text.length).toBeLessThan(64);
    }
  });

  it('serves symlinks that stay inside the root and refuses those leading outside', async () => {
    const inside = await get('/link-inside.bin');
    expect(inside.status).toBe(200);
    expect(sha256(inside.body)).toBe(sha256(tree.files['medium.bin']!));
    expect((await get('/link-outside.txt')).status).toBe(403);
    expect((await get('/dir-link-outside/secret.txt')).status).toBe(403);
    expect((await get('/etc-link/passwd')).status).toBe(403);
  });

  it('is back to nothing in flight after all of the above', async () => {
    await waitFor(() => serverQuiet(server), 10_000, 'quiet server');
    const stats = server.fileServer.stats();
    if (URING) {
      // adaptive is off in tests: file bodies really went through SEND_ZC (or, for large files, splice or sendfile).
      expect(stats.backend).toBe('io_uring');
      expect(stats.sender.zcOpsSubmitted).toBeGreaterThan(0);
      expect(stats.files.splice.activeSends).toBe(0);
      expect(stats.files.splice.slotsInUse).toBe(0);
      expect(stats.sender.notifications).toBe(stats.sender.zcOpsSubmitted);
    } else {
      expect(stats.backend).toBe('copy');
      expect(stats.sender.opsSubmitted).toBe(0);
    }
    const engineBytes = stats.files.byEngine;
    expect(engineBytes.copy.bytes + engineBytes['zc-cache'].bytes + engineBytes.splice.bytes + engineBytes.sendfile.bytes).toBeGreaterThan(5 * 1024 * 1024);
    expect(stats.static.responses.fileSender).toBeGreaterThan(0);
    expect(stats.static.responses.inline).toBeGreaterThan(0);
  });
});

describe(`file server options (${MODE})`, () => {
  it('lists directories with --list, names escaped, dotfiles hidden', async () => {
    const s = await startServer({ root: tree.root, listing: true });
    try {
      const res = await request(`${s.url}nested/`);
      const html = await res.body.text();
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(html).toContain('weird &#60;name&#62; &#38; &#34;quotes&#34;.txt');
      expect(html).not.toContain('<name>');
      expect(html).toContain(`href="./${encodeURIComponent('weird <name> & "quotes".txt')}"`);
      expect(html).toContain('h\u00e9llo w\u00f6rld.txt');
      expect(html).toContain('href="./deeper/"');
      const rootListing = await (await request(`${s.url}sub/`)).body.text();
      expect(rootListing).toContain('sub index'); // index.html still wins over the listing
      const top = await request(`${s.url}nested/deeper/`);
      const topHtml = await top.body.text();
      expect(topHtml).toContain('file.txt');
      const withDots = await startServer({ root: path.join(tree.root, 'sub'), listing: true, index: 'none.html' });
      try {
        const listing = await (await request(withDots.url)).body.text();
        expect(listing).toContain('page.txt');
        expect(listing).not.toContain('.env');
      } finally {
        await withDots.close();
      }
    } finally {
      await s.close();
    }
  });

  it('dotfiles: deny (403) by default, ignore (404), allow (200)', async () => {
    expect((await get('/.secret')).status).toBe(403);
    expect((await get('/.hidden/inner.txt')).status).toBe(403);
    expect((await get('/sub/.env')).status).toBe(403);
    for (const [dotfiles, status] of [['ignore', 404], ['allow', 200]] as const) {
      const s = await startServer({ root: tree.root, dotfiles });
      try {
        const res = await request(`${s.url}.secret`);
        await res.body.arrayBuffer();
        expect(res.statusCode).toBe(status);
        const nested = await request(`${s.url}.hidden/inner.txt`);
        await nested.body.arrayBuffer();
        expect(nested.statusCode).toBe(status);
      } finally {
        await s.close();
      }
    }
  });

  it('symlinks: any follows outside links, none refuses even inside ones', async () => {
    const any = await startServer({ root: tree.root, symlinks: 'any' });
    try {
      const res = await request(`${any.url}link-outside.txt`);
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toContain('TOP-SECRET');
    } finally {
      await any.close();
    }
    const none = await startServer({ root: tree.root, symlinks: 'none' });
    try {
      const res = await request(`${none.url}link-inside.bin`);
      await res.body.arrayBuffer();
      expect(res.statusCode).toBe(403);
      const ok = await request(`${none.url}medium.bin`);
      await ok.body.arrayBuffer();
      expect(ok.statusCode).toBe(200);
    } finally {
      await none.close();
    }
  });

  it('cors: Allow-Origin on every response and preflight answers', async () => {
    const s = await startServer({ root: tree.root, cors: true, immutable: true, maxAge: 31536000 });
    try {
      const res = await request(`${s.url}small.txt`);
      await res.body.arrayBuffer();
      expect(res.headers['access-control-allow-origin']).toBe('*');
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      const missing = await request(`${s.url}nope`);
      await missing.body.arrayBuffer();
      expect(missing.statusCode).toBe(404);
      expect(missing.headers['access-control-allow-origin']).toBe('*');
      const pre = await request(`${s.url}small.txt`, {
        method: 'OPTIONS',
        headers: { origin: 'http://x.test', 'access-control-request-method': 'GET', 'access-control-request-headers': 'range' },
      });
      await pre.body.arrayBuffer();
      expect(pre.statusCode).toBe(204);
      expect(pre.headers['access-control-allow-methods']).toBe('GET, HEAD, OPTIONS');
      expect(pre.headers['access-control-allow-headers']).toBe('range');
      const post = await request(`${s.url}small.txt`, { method: 'POST' });
      await post.body.arrayBuffer();
      expect(post.statusCode).toBe(405);
      expect(post.headers.allow).toBe('GET, HEAD, OPTIONS');
    } finally {
      await s.close();
    }
  });

  it('precompressed: false ignores siblings', async () => {
    const s = await startServer({ root: tree.root, precompressed: false });
    try {
      const res = await request(`${s.url}style.css`, { headers: { 'accept-encoding': 'br, gzip' } });
      expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(tree.files['style.css']!));
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.headers.vary).toBeUndefined();
    } finally {
      await s.close();
    }
  });

  it('rejects bad options with a typed error', () => {
    expect(() => startServerSync({ root: tree.root, dotfiles: 'maybe' as never })).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_OPTION' }));
    expect(() => startServerSync({ root: path.join(tree.dir, 'nope') })).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_OPTION' }));
    expect(() => startServerSync({ root: tree.root, bogus: 1 } as never)).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_OPTION' }));
    expect(() => startServerSync({ root: tree.root, timeoutMs: -1 })).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_OPTION' }));
  });
});

function startServerSync(options: FileServerOptions): void {
  createFileServer({ ...options, zeroCopy: false });
}

function parseMultipart(body: Buffer, boundary: string): Array<{ headers: Record<string, string>; body: Buffer }> {
  const parts: Array<{ headers: Record<string, string>; body: Buffer }> = [];
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  while (pos >= 0) {
    const afterDelim = pos + delimiter.length;
    if (body.subarray(afterDelim, afterDelim + 2).toString() === '--') break;
    const headEnd = body.indexOf('\r\n\r\n', afterDelim);
    const headers: Record<string, string> = {};
    for (const line of body.subarray(afterDelim + 2, headEnd).toString('latin1').split('\r\n')) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const range = /bytes (\d+)-(\d+)\//.exec(headers['content-range'] ?? '');
    const length = range ? Number(range[2]) - Number(range[1]) + 1 : 0;
    const start = headEnd + 4;
    parts.push({ headers, body: body.subarray(start, start + length) });
    pos = body.indexOf(delimiter, start + length);
    expect(body.subarray(start + length, start + length + 2).toString()).toBe('\r\n');
  }
  return parts;
}
