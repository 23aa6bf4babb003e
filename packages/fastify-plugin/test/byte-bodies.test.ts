// Buffer, Uint8Array and string replies through real sockets, compared with the same app
// without the plugin: status, every header but Date, and the body bytes (sha256).
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
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
  logCollector,
  pluginOptions,
  randomBytes,
  rawFetch,
  repliesReleased,
  sha256,
  sideBySide,
  waitFor,
  type Fetched,
} from './helpers.js';

const T = 32 * 1024;
const MiB = 1 << 20;
const SIZES = [1, T - 1, T, T + 1, 4 * MiB];
const buffers = new Map(SIZES.map((n) => [n, randomBytes(n)]));
/** 'é' is 2 bytes in UTF-8: T/2 of them are exactly T bytes in half as many characters. */
const UTF8_AT_T = 'é'.repeat(T / 2);
const UTF8_BELOW_T = 'é'.repeat(T / 2 - 1) + 'a';

function asciiString(n: number): string {
  return buffers.get(n)!.toString('base64').slice(0, n);
}

function routes(app: FastifyInstance): void {
  app.get<{ Params: { n: string } }>('/buffer/:n', async (req) => buffers.get(Number(req.params.n)));
  app.get<{ Params: { n: string } }>('/uint8/:n', async (req) => {
    const b = buffers.get(Number(req.params.n))!;
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  });
  app.get<{ Params: { n: string } }>('/string/:n', (req, reply) => {
    reply.type('text/plain; charset=utf-8').send(asciiString(Number(req.params.n)));
  });
  app.get('/utf8-at', (_req, reply) => reply.type('text/plain; charset=utf-8').send(UTF8_AT_T));
  app.get('/utf8-below', (_req, reply) => reply.type('text/plain; charset=utf-8').send(UTF8_BELOW_T));
  app.get('/json', async () => ({ items: Array.from({ length: 4000 }, (_, i) => ({ i, name: `item ${i}` })) }));
  app.get('/created', (_req, reply) => reply.code(201).header('x-route', 'yes').send(buffers.get(4 * MiB)));
  app.get('/no-content', (_req, reply) => reply.code(204).send(buffers.get(4 * MiB)));
  app.get('/not-modified', (_req, reply) => reply.code(304).send(buffers.get(4 * MiB)));
}

const PATHS = [
  ...SIZES.flatMap((n) => [`/buffer/${n}`, `/uint8/${n}`, `/string/${n}`]),
  '/utf8-at',
  '/utf8-below',
  '/json',
  '/created',
];
/** Bodyless statuses: compared over raw sockets (undici rejects a 304 that keeps its Content-Length). */
const BODYLESS = ['/no-content', '/not-modified'];
/** Paths whose body is at least T bytes and goes on the wire. */
const ELIGIBLE = PATHS.filter((p) => {
  if (p === '/utf8-at' || p === '/json' || p === '/created') return true;
  const n = Number(p.split('/')[2]);
  return n >= T;
});

function fetchAll(base: string, paths: string[], method: 'GET' | 'HEAD' = 'GET'): Promise<Fetched[]> {
  return fetchInOrder(base, paths.map((path) => ({ path, method })));
}

afterEach(closeApps);

describe.runIf(RUNNABLE)(`byte bodies (${MODE})`, () => {
  it('replies at, below and above the threshold are byte-exact and header-identical to plain Fastify', async () => {
    const { plain, zc, app } = await sideBySide(routes, { threshold: T });

    const expected = await fetchAll(plain, PATHS);
    const got = await fetchAll(zc, PATHS);
    expect(got.map(comparable)).toEqual(expected.map(comparable));
    // Content of the reference itself: the routes' bytes.
    expect(sha256(got[PATHS.indexOf(`/buffer/${4 * MiB}`)]!.body)).toBe(sha256(buffers.get(4 * MiB)!));
    expect(got[PATHS.indexOf('/utf8-at')]!.body.toString('utf8')).toBe(UTF8_AT_T);
    expect(got[PATHS.indexOf('/created')]!.headers['x-route']).toBe('yes');

    await repliesReleased(app);
    const { replies, sender } = app.zcSend.stats();
    if (MODE === 'uring') {
      expect(replies.bodies).toBe(ELIGIBLE.length);
      expect(replies.bypassed['copy-backend']).toBeUndefined();
      expect(sender.zcOpsSubmitted).toBeGreaterThanOrEqual(ELIGIBLE.length);
      expect(sender.bytesSent).toBe(replies.bytes);
    } else {
      expect(replies.bodies).toBe(0);
      expect(replies.bypassed['copy-backend']).toBe(ELIGIBLE.length);
    }
    expect(replies.failed).toBe(0);
    expect(replies.bypassed['below-threshold']).toBe(PATHS.length - ELIGIBLE.length);
    expect(sender.inFlightOps).toBe(0);
  });

  it('HEAD replies keep their headers and carry no body', async () => {
    const paths = [`/buffer/${4 * MiB}`, `/string/${T}`, '/created'];
    const { plain, zc, app } = await sideBySide(routes, { threshold: T });
    const expected = await fetchAll(plain, paths, 'HEAD');
    const got = await fetchAll(zc, paths, 'HEAD');
    expect(got.map(comparable)).toEqual(expected.map(comparable));
    expect(got.every((f) => f.body.length === 0 && Number(f.headers['content-length']) >= T)).toBe(true);
    const { replies } = app.zcSend.stats();
    expect(replies.bodies).toBe(0);
    expect(replies.bypassed['no-body']).toBe(paths.length);
  });

  it('raw responses (status line, header order and case, body) match plain Fastify, 204 and 304 included', async () => {
    const { plain, zc, app } = await sideBySide(routes, { threshold: T });
    for (const path of [...BODYLESS, `/buffer/${4 * MiB}`, `/string/${T}`, '/created', '/json']) {
      for (const method of ['GET', 'HEAD']) {
        const expected = await rawFetch(plain, method, path);
        const got = await rawFetch(zc, method, path);
        expect(got.head, `${method} ${path}`).toEqual(expected.head);
        expect(sha256(got.body), `${method} ${path}`).toBe(sha256(expected.body));
      }
    }
    const notModified = await rawFetch(zc, 'GET', '/not-modified');
    expect(notModified.head[0]).toBe('HTTP/1.1 304 Not Modified');
    expect(notModified.body.length).toBe(0);
    await repliesReleased(app);
    if (MODE === 'uring') expect(app.zcSend.stats().replies.bodies).toBe(4);
  });

  it('reply.zcSend() sends any non-empty body through the Sender, and rejects other payloads through the error handler', async () => {
    const small = randomBytes(100);
    const app = await buildApp({
      plugin: pluginOptions({ threshold: T }),
      routes(a) {
        a.get('/small', (_req, reply) => reply.zcSend(small));
        a.get('/text', (_req, reply) => reply.type('text/plain').zcSend('hello zero-copy'));
        a.get('/bad', (_req, reply) => reply.zcSend(42 as unknown as string));
      },
    });
    const base = await listen(app);
    const agent = keepAliveAgent(1);
    const s = await fetch(`${base}/small`, { dispatcher: agent });
    const t = await fetch(`${base}/text`, { dispatcher: agent });
    const bad = await fetch(`${base}/bad`, { dispatcher: agent });
    await agent.close();
    expect(sha256(s.body)).toBe(sha256(small));
    expect(s.headers['content-length']).toBe('100');
    expect(s.headers['content-type']).toBe('application/octet-stream');
    expect(t.body.toString()).toBe('hello zero-copy');
    expect(bad.status).toBe(500);
    expect(JSON.parse(bad.body.toString())).toMatchObject({ code: 'FST_ZC_INVALID_PAYLOAD', statusCode: 500 });
    await repliesReleased(app);
    const { replies, sender } = app.zcSend.stats();
    // Forced replies use the Sender in both modes: SEND_ZC on io_uring, socket.write on copy.
    expect(replies.bodies).toBe(2);
    expect(replies.bytes).toBe(100 + 'hello zero-copy'.length);
    if (MODE === 'copy') expect(sender.copyWrites).toBeGreaterThanOrEqual(2);
    else expect(sender.zcOpsSubmitted).toBeGreaterThanOrEqual(2);
  });

  it('hooks run in the same order, see the same payloads, and the final payload of the last hook is what goes out', async () => {
    const big = buffers.get(4 * MiB)!;
    const replaced = randomBytes(2 * MiB);
    function build(withPlugin: boolean) {
      const seen: string[] = [];
      const statuses: number[] = [];
      const headersSeen: string[] = [];
      const elapsed: Array<{ handler: number; response: number }> = [];
      return {
        seen,
        statuses,
        headersSeen,
        elapsed,
        setup: {
          plugin: withPlugin ? pluginOptions({ threshold: T }) : null,
          before(a: FastifyInstance) {
            a.addHook('onSend', (_req, _reply, payload, done) => {
              seen.push(`before:${describePayload(payload)}`);
              done(null, payload);
            });
          },
          routes(a: FastifyInstance) {
            a.addHook('onSend', async (req, _reply, payload) => {
              seen.push(`after:${describePayload(payload)}`);
              if (req.url === '/replace') return replaced;
              if (req.url === '/to-string') return (payload as Buffer).toString('latin1');
              return payload;
            });
            a.addHook('onResponse', (_req, reply, done) => {
              statuses.push(reply.statusCode);
              headersSeen.push(JSON.stringify(reply.getHeaders()) + String(reply.getHeader('content-length')));
              const handler = (reply.request as unknown as { handlerElapsed?: number }).handlerElapsed ?? -1;
              elapsed.push({ handler, response: reply.elapsedTime });
              done();
            });
            const send = (req: { url: string }, reply: import('fastify').FastifyReply) => {
              (reply.request as unknown as { handlerElapsed?: number }).handlerElapsed = reply.elapsedTime;
              reply.code(req.url === '/created' ? 201 : 200).send(big);
            };
            a.get('/plain', send);
            a.get('/created', send);
            a.get('/replace', send);
            a.get('/to-string', send);
          },
        },
      };
    }
    const paths = ['/plain', '/created', '/replace', '/to-string'];
    const without = build(false);
    const withZc = build(true);
    const plainBase = await listen(await buildApp(without.setup));
    const app = await buildApp(withZc.setup);
    const zcBase = await listen(app);
    const expected = await fetchAll(plainBase, paths);
    const got = await fetchAll(zcBase, paths);
    expect(got.map(comparable)).toEqual(expected.map(comparable));
    expect(sha256(got[2]!.body)).toBe(sha256(replaced));
    // Fastify writes a string payload as UTF-8.
    expect(got[3]!.body.equals(Buffer.from(big.toString('latin1'), 'utf8'))).toBe(true);
    expect(withZc.seen).toEqual(without.seen);
    expect(withZc.seen).toContain('after:Buffer');
    expect(withZc.statuses).toEqual([200, 201, 200, 200]);
    expect(withZc.statuses).toEqual(without.statuses);
    // reply.getHeader()/getHeaders() in onResponse: the same as without the plugin.
    expect(withZc.headersSeen).toEqual(without.headersSeen);
    expect(withZc.headersSeen[0]).toContain(String(4 * MiB));
    // onResponse runs after the body went out: later than the handler, by a finite amount.
    for (const { handler, response } of withZc.elapsed) {
      expect(handler).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(response)).toBe(true);
      expect(response).toBeGreaterThanOrEqual(handler);
    }
    if (MODE === 'uring') {
      // A body is counted when its last notification is in, which may come after the client has it.
      await repliesReleased(app);
      expect(app.zcSend.stats().replies.bodies).toBe(paths.length);
    }
  });

  it('logs exactly what plain Fastify logs, plus one line at ready naming the backend', async () => {
    const paths = [`/buffer/${4 * MiB}`, `/string/${T}`, '/created', '/json', `/buffer/1`];
    const plainLog = logCollector();
    const zcLog = logCollector();
    const plain = await listen(await buildApp({ plugin: null, routes, fastify: { logger: { level: 'info', stream: plainLog.stream } } }));
    const zc = await listen(
      await buildApp({ plugin: pluginOptions({ threshold: T }), routes, fastify: { logger: { level: 'info', stream: zcLog.stream } } }),
    );
    await fetchAll(plain, paths);
    await fetchAll(zc, paths);
    const shape = (lines: typeof plainLog.lines) =>
      lines
        .filter((l) => !l.msg.startsWith('zcSend:') && !l.msg.startsWith('Server listening'))
        .map((l) => ({ level: l.level, msg: l.msg, url: (l.req as { url?: string } | undefined)?.url, status: (l.res as { statusCode?: number } | undefined)?.statusCode }));
    await waitFor(() => shape(zcLog.lines).length === shape(plainLog.lines).length, 5_000, 'log lines');
    expect(shape(zcLog.lines)).toEqual(shape(plainLog.lines));
    const ready = zcLog.lines.filter((l) => l.msg.startsWith('zcSend:'));
    expect(ready).toHaveLength(1);
    expect(ready[0]!.level).toBe(30);
    expect(ready[0]!.msg).toContain(MODE === 'uring' ? 'io_uring' : 'copy backend');
    if (MODE === 'copy') expect(ready[0]!.msg).toContain('ZCSEND_DISABLE');
    const times = zcLog.lines.filter((l) => l.msg === 'request completed').map((l) => l.responseTime as number);
    expect(times).toHaveLength(paths.length);
    expect(times.every((t) => Number.isFinite(t) && t > 0)).toBe(true);
  });

  it('serves 100 concurrent keep-alive clients byte-exact', async () => {
    const app = await buildApp({ plugin: pluginOptions({ threshold: T }), routes });
    const base = await listen(app);
    let connections = 0;
    app.server.on('connection', () => connections++);
    const agent = keepAliveAgent(100);
    try {
      const paths = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `/buffer/${4 * MiB}` : i % 3 === 1 ? `/string/${T + 1}` : `/buffer/${T}`));
      const results = await Promise.all(paths.map((p) => fetch(base + p, { dispatcher: agent })));
      results.forEach((r, i) => {
        const p = paths[i]!;
        const n = Number(p.split('/')[2]);
        const want = p.startsWith('/string') ? sha256(asciiString(n)) : sha256(buffers.get(n)!);
        expect(r.status).toBe(200);
        expect(sha256(r.body)).toBe(want);
      });
      expect(connections).toBeLessThanOrEqual(100);
      expect(connections).toBeGreaterThan(1);
    } finally {
      await agent.close();
    }
    await repliesReleased(app);
    const { replies, sender } = app.zcSend.stats();
    expect(replies.failed).toBe(0);
    if (MODE === 'uring') expect(replies.bodies).toBe(300);
    expect(sender.inFlightOps).toBe(0);
    expect(sender.pendingNotifications).toBe(0);
  });

  it('keeps order with pipelined requests on one connection', async () => {
    const app = await buildApp({ plugin: pluginOptions({ threshold: T }), routes });
    const base = await listen(app);
    const { Agent } = await import('undici');
    const agent = new Agent({ connections: 1, pipelining: 8 });
    try {
      const paths = Array.from({ length: 16 }, (_, i) => (i % 2 ? `/buffer/${4 * MiB}` : `/string/${T + 1}`));
      const results = await Promise.all(paths.map((p) => fetch(base + p, { dispatcher: agent })));
      results.forEach((r, i) => {
        const n = Number(paths[i]!.split('/')[2]);
        expect(sha256(r.body)).toBe(paths[i]!.startsWith('/string') ? sha256(asciiString(n)) : sha256(buffers.get(n)!));
      });
    } finally {
      await agent.close();
    }
    await repliesReleased(app);
    const { replies } = app.zcSend.stats();
    expect(replies.failed).toBe(0);
    // Responses queued behind others wait for their turn on the socket, then go out zero-copy too.
    expect(replies.bypassed['no-socket']).toBeUndefined();
    if (MODE === 'uring') expect(replies.bodies).toBe(16);
  });

  it('with adaptive on (the default) loopback byte bodies are left to Fastify, unless sent with reply.zcSend()', async () => {
    const app = await buildApp({
      plugin: { threshold: T },
      routes(a) {
        routes(a);
        a.get('/forced', (_req, reply) => reply.zcSend(buffers.get(T + 1)!));
      },
    });
    const base = await listen(app);
    const agent = keepAliveAgent(1);
    try {
      expect(sha256((await fetch(`${base}/buffer/${4 * MiB}`, { dispatcher: agent })).body)).toBe(sha256(buffers.get(4 * MiB)!));
      expect(sha256((await fetch(`${base}/forced`, { dispatcher: agent })).body)).toBe(sha256(buffers.get(T + 1)!));
    } finally {
      await agent.close();
    }
    await repliesReleased(app);
    const { replies } = app.zcSend.stats();
    expect(replies.bypassed).toEqual(MODE === 'uring' ? { loopback: 1 } : { 'copy-backend': 1 });
    expect(replies.bodies).toBe(1);
  });

  it('inject() works and reports the fallback', async () => {
    const app = await buildApp({
      plugin: pluginOptions({ threshold: T }),
      routes(a) {
        routes(a);
        a.get('/forced', (_req, reply) => reply.zcSend(buffers.get(T + 1)!));
      },
    });
    await app.ready();
    const res = await app.inject({ method: 'GET', url: `/buffer/${4 * MiB}` });
    expect(res.statusCode).toBe(200);
    expect(sha256(res.rawPayload)).toBe(sha256(buffers.get(4 * MiB)!));
    expect(res.headers['content-length']).toBe(String(4 * MiB));
    const forced = await app.inject({ method: 'GET', url: '/forced' });
    expect(sha256(forced.rawPayload)).toBe(sha256(buffers.get(T + 1)!));
    const { replies } = app.zcSend.stats();
    expect(replies.bodies).toBe(0);
    // inject() has no socket: both replies, the forced one included, are ordinary sends.
    expect(replies.bypassed['no-socket']).toBe(2);
  });
});

function describePayload(payload: unknown): string {
  if (typeof payload === 'string') return 'string';
  if (Buffer.isBuffer(payload)) return 'Buffer';
  return payload === null ? 'null' : typeof payload;
}
