// serveStatic as a plain http.createServer handler, as connect middleware and as express middleware.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import * as path from 'node:path';
import { once } from 'node:events';
import connect from 'connect';
import express from 'express';
import { request } from 'undici';
import { serveStatic, type StaticHandler } from '../src/index.js';
import { MODE, MiB, makeTree, randomBytes, serverQuiet, sha256, testSender, waitFor, type Tree } from './helpers.js';

let tree: Tree;
let handler: StaticHandler;

beforeAll(() => {
  tree = makeTree();
  handler = serveStatic(tree.root, { sender: testSender() });
});

afterAll(async () => {
  try {
    await handler?.close();
    await handler?.sender.close();
  } finally {
    tree?.cleanup();
  }
});

async function listen(app: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** One request on an HTTP/2 (h2c) session: status, headers and the whole body. */
async function h2get(session: http2.ClientHttp2Session, urlPath: string, headers: http2.OutgoingHttpHeaders = {}) {
  const stream = session.request({ ':path': urlPath, ...headers });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const [head] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
  await once(stream, 'end');
  return { status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) };
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

describe(`serveStatic as middleware (${MODE})`, () => {
  it('works as a plain http.createServer handler', async () => {
    const s = await listen(handler as http.RequestListener);
    try {
      const res = await get(`${s.url}/large.bin`);
      expect(sha256(res.body)).toBe(sha256(tree.files['large.bin']!));
      expect((await get(`${s.url}/missing`)).status).toBe(404);
      expect((await get(`${s.url}/sub`)).headers.location).toBe('/sub/');
    } finally {
      await s.close();
    }
  });

  it('works under connect, mounted, falling through to the next middleware', async () => {
    const app = connect();
    app.use('/static', handler as connect.NextHandleFunction);
    app.use((_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.statusCode = 404;
      res.end('fell through');
    });
    const s = await listen(app as unknown as http.RequestListener);
    try {
      const res = await get(`${s.url}/static/medium.bin`, { range: 'bytes=10-19' });
      expect(res.status).toBe(206);
      expect(sha256(res.body)).toBe(sha256(tree.files['medium.bin']!.subarray(10, 20)));
      const missing = await get(`${s.url}/static/nope.txt`);
      expect(missing.body.toString()).toBe('fell through');
      // The redirect keeps the mount path.
      const redirect = await get(`${s.url}/static/sub?q=1`);
      expect(redirect.status).toBe(301);
      expect(redirect.headers.location).toBe('/static/sub/?q=1');
      expect((await get(`${s.url}/static/.secret`)).status).toBe(403);
    } finally {
      await s.close();
    }
  });

  it('works under express, with routes before and after it and POST passing through', async () => {
    const app = express();
    app.get('/api', (_req, res) => {
      res.json({ ok: true });
    });
    app.use('/files', handler);
    app.post('/files/large.bin', (_req, res) => {
      res.status(201).send('posted');
    });
    app.use((_req: express.Request, res: express.Response) => {
      res.status(404).send('express 404');
    });
    const s = await listen(app as unknown as http.RequestListener);
    try {
      expect((await get(`${s.url}/api`)).body.toString()).toBe('{"ok":true}');
      const big = await get(`${s.url}/files/large.bin`);
      expect(big.status).toBe(200);
      expect(sha256(big.body)).toBe(sha256(tree.files['large.bin']!));
      const small = await get(`${s.url}/files/small.txt`);
      expect(small.body.equals(tree.files['small.txt']!)).toBe(true);
      expect(small.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(small.headers['x-powered-by']).toBe('Express'); // headers set before us are kept
      const post = await request(`${s.url}/files/large.bin`, { method: 'POST' });
      expect(post.statusCode).toBe(201);
      expect(await post.body.text()).toBe('posted');
      expect((await get(`${s.url}/files/missing`)).body.toString()).toBe('express 404');
      const redirect = await get(`${s.url}/files/sub`);
      expect(redirect.headers.location).toBe('/files/sub/');
      const notModified = await get(`${s.url}/files/large.bin`, { 'if-none-match': String(big.headers.etag) });
      expect(notModified.status).toBe(304);
      await waitFor(() => serverQuiet({ fileServer: { stats: () => ({ sender: handler.sender.stats(), files: handler.stats().files }) } } as never), 10_000, 'quiet');
    } finally {
      await s.close();
    }
  });

  it('leaves its headers readable to later code (loggers read res.getHeader on finish), replacing same-named ones set before it', async () => {
    const seen = new Map<string, Record<string, unknown>>();
    const app: http.RequestListener = (req, res) => {
      if (req.url === '/large.bin') {
        // What an earlier middleware may have set: a stale Content-Type is replaced, others are kept.
        res.setHeader('Content-Type', 'application/x-stale');
        res.setHeader('X-Request-Id', 'r1');
      }
      res.on('finish', () => seen.set(req.url!, { ...res.getHeaders() }));
      handler(req, res);
    };
    const s = await listen(app);
    try {
      const big = await get(`${s.url}/large.bin`);
      const small = await get(`${s.url}/small.txt`);
      expect(sha256(big.body)).toBe(sha256(tree.files['large.bin']!));
      expect(small.body.equals(tree.files['small.txt']!)).toBe(true);
      expect(big.headers['content-type']).not.toBe('application/x-stale');
      expect(big.headers['x-request-id']).toBe('r1');
      await waitFor(() => seen.size === 2, 10_000, 'both responses finished');
      // Nothing was set before the small file's response: its headers must still be readable.
      expect(seen.get('/small.txt')).toMatchObject({
        'content-length': String(tree.files['small.txt']!.length),
        'content-type': 'text/plain; charset=utf-8',
        etag: small.headers.etag,
      });
      expect(seen.get('/large.bin')).toMatchObject({
        'content-length': String(tree.files['large.bin']!.length),
        'content-type': big.headers['content-type'],
        'x-request-id': 'r1',
      });
    } finally {
      await s.close();
    }
  });

  it('over HTTP/2 (bodies through res.write): full, range and multipart byte-exact; a file renamed over is never sent under the old validators', async () => {
    const h2 = serveStatic(tree.root, { sender: handler.sender, statCacheMs: 60_000 });
    const server = http2.createServer(h2 as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const session = http2.connect(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    try {
      const data = tree.files['large.bin']!;
      const full = await h2get(session, '/large.bin');
      expect(full.status).toBe(200);
      expect(sha256(full.body)).toBe(sha256(data));
      const range = await h2get(session, '/large.bin', { range: 'bytes=100-70099' });
      expect(range.status).toBe(206);
      expect(sha256(range.body)).toBe(sha256(data.subarray(100, 70_100)));
      const multi = await h2get(session, '/large.bin', { range: 'bytes=0-9,-5' });
      expect(multi.status).toBe(206);
      const text = multi.body.toString('latin1');
      expect(text).toContain(data.subarray(0, 10).toString('latin1'));
      expect(text).toContain(data.subarray(data.length - 5).toString('latin1'));

      // A deploy: a new file renamed over the path while its stat is cached for a minute. The
      // body is read from the file opened and checked before the headers, so the request gets the
      // new version with its own validators (never its bytes under the old ones).
      const name = 'h2-deploy.bin';
      const before = tree.write(name, randomBytes(1 * MiB + 7));
      const first = await h2get(session, `/${name}`);
      expect(sha256(first.body)).toBe(sha256(before));
      const after = randomBytes(before.length);
      const file = path.join(tree.root, name);
      fs.writeFileSync(`${file}.next`, after);
      fs.renameSync(`${file}.next`, file);
      const racing = await h2get(session, `/${name}`);
      expect(racing.status).toBe(200);
      expect(sha256(racing.body)).toBe(sha256(after));
      expect(racing.headers['etag']).not.toBe(first.headers['etag']);
      // Five bodies streamed (counted once each settles), none cut.
      await waitFor(() => h2.stats().responses.stream === 5, 5000, 'five streamed bodies');
      expect(h2.stats().responses).toMatchObject({ stream: 5, aborted: 0, fileSender: 0 });
      // Removed since its lookup: a 404, not a cut connection.
      fs.rmSync(file);
      expect((await h2get(session, `/${name}`)).status).toBe(404);
    } finally {
      session.close();
      await new Promise((r) => server.close(r));
      await h2.close();
    }
  });

  it('rawHeaders: true hands the list to Node as it is (same bytes on the wire, nothing readable back)', async () => {
    const raw = serveStatic(tree.root, { sender: handler.sender, rawHeaders: true });
    let lengthSeen: unknown = 'unset';
    const s = await listen((req, res) => {
      res.on('finish', () => (lengthSeen = res.getHeader('content-length')));
      raw(req, res);
    });
    try {
      const small = await get(`${s.url}/small.txt`);
      expect(small.body.equals(tree.files['small.txt']!)).toBe(true);
      expect(small.headers['content-length']).toBe(String(tree.files['small.txt']!.length));
      await waitFor(() => lengthSeen !== 'unset', 10_000, 'finished');
      expect(lengthSeen).toBeUndefined();
    } finally {
      await s.close();
      await raw.close();
    }
  });
});
