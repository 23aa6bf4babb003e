// @fastify/static (and @fastify/compress alongside) with and without the plugin: same status,
// same headers (all but Date, in the same order), same bytes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import fastifyCompress from '@fastify/compress';
import {
  MODE,
  RUNNABLE,
  buildApp,
  closeApps,
  comparable,
  fetch,
  fetchInOrder,
  keepAliveAgent,
  listen,
  pluginOptions,
  randomBytes,
  rawFetch,
  repliesReleased,
  sha256,
  sideBySide,
  type FetchCase,
} from './helpers.js';

const KiB = 1024;
const MiB = 1 << 20;
const T = 32 * KiB;
let root = '';
const files: Record<string, Buffer> = {};

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-fastify-static-'));
  const write = (name: string, data: Buffer) => {
    files[name] = data;
    fs.writeFileSync(path.join(root, name), data);
  };
  write('tiny.bin', randomBytes(100));
  write('below.bin', randomBytes(T - 1));
  write('at.bin', randomBytes(T));
  write('mid.bin', randomBytes(300 * KiB));
  write('big.bin', randomBytes(8 * MiB));
  write('empty.bin', Buffer.alloc(0));
  // Compressible, so @fastify/compress really compresses it.
  write('page.html', Buffer.from(`<!doctype html><title>t</title>${'<p>zero-copy sends</p>\n'.repeat(20_000)}`));
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
afterEach(closeApps);

function staticRoutes(app: FastifyInstance): void {
  void app.register(fastifyStatic, { root });
  app.get('/via-sendfile', (_req, reply) => reply.sendFile('big.bin'));
}

function kindOf(urlPath: string): 'file' | 'bytes' {
  return urlPath === '/text' || urlPath === '/binary' ? 'bytes' : 'file';
}

const CASES: FetchCase[] = [
  { path: '/tiny.bin' },
  { path: '/below.bin' },
  { path: '/at.bin' },
  { path: '/mid.bin' },
  { path: '/big.bin' },
  { path: '/empty.bin' },
  { path: '/via-sendfile' },
  { path: '/big.bin', headers: { range: 'bytes=100-199999' } },
  { path: '/big.bin', headers: { range: 'bytes=-50000' } },
  { path: '/big.bin', headers: { range: `bytes=${8 * MiB - 40000}-` } },
  { path: '/mid.bin', headers: { range: 'bytes=0-0' } },
  { path: '/big.bin', headers: { range: 'bytes=0-99,200-299' } },
  { path: '/big.bin', headers: { range: `bytes=${9 * MiB}-` } },
  { path: '/big.bin', method: 'HEAD' },
  { path: '/missing.bin' },
];
/** GETs of bodies >= T that reach the wire (ranges of at least T bytes, full files of at least T). */
const ELIGIBLE = 8;

describe.runIf(RUNNABLE)(`@fastify/static files (${MODE})`, () => {
  it('full, ranged, HEAD and error responses are byte-exact and header-identical to the app without the plugin', async () => {
    const { plain, zc, app } = await sideBySide(staticRoutes, { threshold: T });
    const expected = await fetchInOrder(plain, CASES);
    const got = await fetchInOrder(zc, CASES);
    expect(got.map(comparable)).toEqual(expected.map(comparable));

    // The reference itself serves the files: check a few against their bytes.
    expect(sha256(got[4]!.body)).toBe(sha256(files['big.bin']!));
    expect(got[7]!.status).toBe(206);
    expect(sha256(got[7]!.body)).toBe(sha256(files['big.bin']!.subarray(100, 200000)));
    expect(sha256(got[8]!.body)).toBe(sha256(files['big.bin']!.subarray(8 * MiB - 50000)));
    expect(got[11]!.status).toBe(200); // multi-range: a full 200
    expect(got[12]!.status).toBe(416);

    await repliesReleased(app);
    const { replies, files: fileStats } = app.zcSend.stats();
    // Files go through core's file engines in both modes (the copy engine beats a 16 KiB ReadStream too).
    expect(replies.files).toBe(ELIGIBLE);
    expect(replies.failed).toBe(0);
    expect(replies.bypassed['below-threshold']).toBeGreaterThanOrEqual(3);
    expect(fileStats).not.toBeNull();
    const engineSends = Object.values(fileStats!.byEngine).reduce((n, e) => n + e.sends, 0);
    expect(engineSends).toBe(ELIGIBLE);
  });

  it('conditional requests (304) and raw header blocks match, with keep-alive off', async () => {
    const { plain, zc, app } = await sideBySide(staticRoutes, { threshold: T });
    const first = await fetch(`${zc}/big.bin`);
    const etag = String(first.headers.etag);
    const lastModified = String(first.headers['last-modified']);
    const raw: Array<[string, string, Record<string, string>]> = [
      ['GET', '/big.bin', {}],
      ['GET', '/big.bin', { 'if-none-match': etag }],
      ['GET', '/big.bin', { 'if-modified-since': lastModified }],
      ['GET', '/big.bin', { range: 'bytes=1000-500000', 'if-range': etag }],
      ['HEAD', '/mid.bin', {}],
      ['GET', '/mid.bin', { range: 'bytes=5-' }],
    ];
    for (const [method, p, headers] of raw) {
      const expected = await rawFetch(plain, method, p, headers);
      const got = await rawFetch(zc, method, p, headers);
      expect(got.head, `${method} ${p} ${JSON.stringify(headers)}`).toEqual(expected.head);
      expect(sha256(got.body)).toBe(sha256(expected.body));
    }
    const notModified = await rawFetch(zc, 'GET', '/big.bin', { 'if-none-match': etag });
    expect(notModified.head[0]).toBe('HTTP/1.1 304 Not Modified');
    expect(notModified.body.length).toBe(0);
    await repliesReleased(app);
    // first fetch + GET + ranged GET + mid.bin from 5.
    expect(app.zcSend.stats().replies.files).toBe(4);
  });

  it('serves a file again after it changed on disk (no stale bytes)', async () => {
    const name = 'changing.bin';
    const v1 = randomBytes(200 * KiB);
    const v2 = randomBytes(260 * KiB);
    fs.writeFileSync(path.join(root, name), v1);
    const app = await buildApp({ plugin: pluginOptions({ threshold: T }), routes: staticRoutes });
    const base = await listen(app);
    const agent = keepAliveAgent(1);
    try {
      for (let i = 0; i < 3; i++) expect(sha256((await fetch(`${base}/${name}`, { dispatcher: agent })).body)).toBe(sha256(v1));
      fs.writeFileSync(path.join(root, name), v2);
      // A different mtime is not guaranteed within one clock tick; the size differs.
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${base}/${name}`, { dispatcher: agent });
        expect(r.headers['content-length']).toBe(String(v2.length));
        expect(sha256(r.body)).toBe(sha256(v2));
      }
    } finally {
      await agent.close();
    }
  });

  it.each([
    ['another mtime', false],
    // Same size and same Last-Modified (rsync -a keeps mtimes): only the inode tells them apart.
    ['the same mtime', true],
  ])('a path replaced after the stream opened it (%s): the stream\'s file goes out, never the new one under old headers', async (_label, sameMtime) => {
    const name = sameMtime ? 'swapped-same-mtime.bin' : 'swapped.bin';
    const old = randomBytes(200 * KiB);
    const replacement = randomBytes(200 * KiB);
    const target = path.join(root, name);
    fs.writeFileSync(target, old);
    const stamp = new Date(Date.now() - 60_000);
    fs.utimesSync(target, stamp, stamp);
    const routes = (a: FastifyInstance) => {
      staticRoutes(a);
      // Runs after @fastify/static built its stream: once that stream has opened the old file,
      // rename a same-sized file with another mtime over the path, before the body is piped.
      a.addHook('onSend', async (request, _reply, payload) => {
        if (request.url !== `/${name}` || !(payload instanceof fs.ReadStream)) return payload;
        if (payload.pending) await once(payload, 'ready');
        const staged = path.join(root, '.staged.bin');
        fs.writeFileSync(staged, replacement);
        if (sameMtime) fs.utimesSync(staged, stamp, stamp);
        fs.renameSync(staged, target);
        return payload;
      });
    };
    const app = await buildApp({ plugin: pluginOptions({ threshold: T }), routes });
    const got = await fetch(`${await listen(app)}/${name}`);
    expect(got.status).toBe(200);
    expect(got.headers['last-modified']).toBe(stamp.toUTCString());
    expect(sha256(got.body)).toBe(sha256(old));
    await repliesReleased(app);
    expect(app.zcSend.stats().replies.bypassed['file-changed']).toBe(1);
    fs.rmSync(target);
  });

  it("@fastify/static's precompressed siblings go out zero-copy, header- and byte-identical to the app without the plugin", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-fastify-pre-'));
    try {
      const identity = randomBytes(400 * KiB);
      const brotli = randomBytes(300 * KiB); // never decoded: only its bytes on the wire matter
      const gzipped = randomBytes(320 * KiB);
      fs.writeFileSync(path.join(dir, 'asset.js'), identity);
      fs.writeFileSync(path.join(dir, 'asset.js.br'), brotli);
      fs.writeFileSync(path.join(dir, 'asset.js.gz'), gzipped);
      const routes = (a: FastifyInstance) => void a.register(fastifyStatic, { root: dir, preCompressed: true });
      const plain = await listen(await buildApp({ plugin: null, routes }));
      const app = await buildApp({ plugin: pluginOptions({ threshold: T }), routes });
      const zc = await listen(app);
      const cases: Array<[Record<string, string>, Buffer, string | undefined]> = [
        [{ 'accept-encoding': 'br, gzip' }, brotli, 'br'],
        [{ 'accept-encoding': 'gzip' }, gzipped, 'gzip'],
        [{}, identity, undefined],
        [{ 'accept-encoding': 'br', range: 'bytes=1000-99999' }, brotli.subarray(1000, 100_000), 'br'],
      ];
      for (const [headers, body, encoding] of cases) {
        const expected = await rawFetch(plain, 'GET', '/asset.js', headers);
        const got = await rawFetch(zc, 'GET', '/asset.js', headers);
        expect(got.head, JSON.stringify(headers)).toEqual(expected.head);
        expect(sha256(got.body)).toBe(sha256(expected.body));
        expect(sha256(got.body)).toBe(sha256(body));
        const contentEncoding = got.head.find((l) => /^content-encoding:/i.test(l));
        expect(contentEncoding?.split(': ')[1]).toBe(encoding);
      }
      await repliesReleased(app);
      const { replies } = app.zcSend.stats();
      expect(replies.files, JSON.stringify(replies)).toBe(cases.length);
      expect(replies.bypassed.encoded).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ReadStreams the plugin cannot serve from their path go out exactly as without it', async () => {
    const big = files['big.bin']!;
    const bigPath = () => path.join(root, 'big.bin');
    const streamRoutes = (a: FastifyInstance) => {
      // No Content-Length: Fastify streams it chunked, and so must the plugin.
      a.get('/chunked', (_req, reply) => reply.type('application/octet-stream').send(fs.createReadStream(bigPath())));
      // Content-Length set by hand, a bounded range.
      a.get('/manual-range', (_req, reply) =>
        reply.header('content-length', 300_000).send(fs.createReadStream(bigPath(), { start: 1000, end: 300_999 })),
      );
      // Already read from (the first chunk was taken): not the file's bytes from its start.
      a.get('/partly-read', async (_req, reply) => {
        const stream = fs.createReadStream(bigPath());
        const [first] = (await once(stream, 'data')) as [Buffer];
        stream.pause();
        return reply.header('content-length', big.length - first.length).send(stream);
      });
      // Encoding set: Fastify writes decoded strings.
      a.get('/encoded-stream', (_req, reply) => reply.send(fs.createReadStream(path.join(root, 'page.html'), { encoding: 'latin1' })));
      // The file cannot be opened: Fastify's error path, before any header.
      a.get('/missing', (_req, reply) => reply.header('content-length', 1 << 20).send(fs.createReadStream(path.join(root, 'nope.bin'))));
    };
    const { plain, zc, app } = await sideBySide(streamRoutes, { threshold: T });
    for (const p of ['/chunked', '/manual-range', '/partly-read', '/encoded-stream', '/missing']) {
      const expected = await rawFetch(plain, 'GET', p);
      const got = await rawFetch(zc, 'GET', p);
      expect(got.head, p).toEqual(expected.head);
      expect(sha256(got.body), p).toBe(sha256(expected.body));
    }
    expect((await rawFetch(zc, 'GET', '/missing')).head[0]).toBe('HTTP/1.1 500 Internal Server Error');
    const ranged = await fetch(`${zc}/manual-range`);
    expect(sha256(ranged.body)).toBe(sha256(big.subarray(1000, 301_000)));
    await repliesReleased(app);
    const { replies } = app.zcSend.stats();
    expect(replies.files, JSON.stringify(replies)).toBe(2); // /manual-range, twice
    expect(replies.bypassed.framing, JSON.stringify(replies)).toBe(2); // no Content-Length: /chunked, /encoded-stream
    expect(replies.bypassed['stream-state']).toBe(3); // /partly-read, /missing twice
  });

  for (const order of ['compress before zcSend', 'compress after zcSend'] as const) {
    it(`@fastify/compress alongside (${order}): compressed responses unchanged, identity ones still zero-copy`, async () => {
      const routes = async (app: FastifyInstance) => {
        if (order === 'compress after zcSend') await app.register(fastifyCompress, { global: true });
        staticRoutes(app);
        app.get('/text', (_req, reply) => reply.type('text/plain').send('compress me please\n'.repeat(10_000)));
        app.get('/binary', (_req, reply) => reply.send(files['mid.bin']));
      };
      const before = async (app: FastifyInstance) => {
        if (order === 'compress before zcSend') await app.register(fastifyCompress, { global: true });
      };
      const plainApp = await buildApp({ plugin: null, before: (a) => a.register(fastifyCompress, { global: true }), routes: (a) => {
        staticRoutes(a);
        a.get('/text', (_req, reply) => reply.type('text/plain').send('compress me please\n'.repeat(10_000)));
        a.get('/binary', (_req, reply) => reply.send(files['mid.bin']));
      } });
      const plain = await listen(plainApp);
      const app = await buildApp({ plugin: pluginOptions({ threshold: T }), before, routes });
      const zc = await listen(app);
      const gzip = { 'accept-encoding': 'gzip' };
      const cases: FetchCase[] = [
        { path: '/page.html', headers: gzip },
        { path: '/text', headers: gzip },
        { path: '/text', headers: { 'accept-encoding': 'br' } },
        { path: '/big.bin', headers: gzip },
        { path: '/binary', headers: gzip },
        { path: '/page.html' },
        { path: '/big.bin' },
        { path: '/text' },
      ];
      const expected = await fetchInOrder(plain, cases);
      const got = await fetchInOrder(zc, cases);
      expect(got.map(comparable)).toEqual(expected.map(comparable));
      expect(got[0]!.headers['content-encoding']).toBe('gzip');
      expect(got[1]!.headers['content-encoding']).toBe('gzip');
      expect(got[2]!.headers['content-encoding']).toBe('br');
      await repliesReleased(app);
      const { replies } = app.zcSend.stats();
      // Compressed bodies are never touched; identity ones >= T are: files in both modes, byte
      // bodies on io_uring only (on the copy backend Fastify's own write is left alone).
      const identity = (kind: 'file' | 'bytes') =>
        got.filter((f, i) => f.headers['content-encoding'] === undefined && f.body.length >= T && kindOf(cases[i]!.path) === kind).length;
      expect({ files: replies.files, bodies: replies.bodies }, JSON.stringify(replies)).toEqual({
        files: identity('file'),
        bodies: MODE === 'uring' ? identity('bytes') : 0,
      });
      expect(identity('file')).toBeGreaterThanOrEqual(2);
    });
  }
});
