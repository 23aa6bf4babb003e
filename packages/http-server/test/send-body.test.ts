// sendBody on real node:http servers: the out-of-band path keeps keep-alive and framing; every
// ineligible response gets the same bytes through node:http.
import { afterEach, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import { Agent, request } from 'undici';
import { Sender, ZcSendError } from '@zcsend/core';
import { plainBodyReason, sendBody } from '../src/index.js';
import { MODE, MiB, KiB, URING, ResponseParser, rawExchange, randomBytes, senderQuiet, sha256, testSender, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, sender: Sender) => void | Promise<void>;

async function serve(handler: Handler, sender = testSender()): Promise<{ port: number; url: string; sender: Sender; errors: unknown[] }> {
  const errors: unknown[] = [];
  const server = http.createServer((req, res) => {
    Promise.resolve(handler(req, res, sender)).catch((err) => errors.push(err));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await sender.destroy();
  });
  return { port, url: `http://127.0.0.1:${port}/`, sender, errors };
}

describe(`sendBody (${MODE})`, () => {
  it('sends large bodies out of band with keep-alive intact, several responses per connection', async () => {
    const bodies = [randomBytes(1 * MiB + 7), randomBytes(3 * MiB), randomBytes(64 * KiB)];
    const { port, sender, errors } = await serve(async (req, res, s) => {
      const body = bodies[Number(req.url!.slice(1))]!;
      res.setHeader('content-type', 'application/octet-stream');
      expect(plainBodyReason(res, body.length, s)).toBe(MODE === 'copy' ? 'copy-backend' : null);
      await sendBody(res, body, { sender: s });
    });
    // One request at a time on one connection: each response has its socket, so each goes out of band.
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const parser = new ResponseParser();
    socket.on('data', (c: Buffer) => parser.push(c));
    for (const [n, i] of [0, 1, 2, 0].entries()) {
      socket.write(`GET /${i} HTTP/1.1\r\nHost: t\r\n\r\n`);
      await waitFor(() => parser.responses.length === n + 1, 20_000, `response ${n}`);
    }
    expect(socket.destroyed).toBe(false);
    const responses = parser.responses;
    expect(responses.map((r) => sha256(r.body))).toEqual([0, 1, 2, 0].map((i) => sha256(bodies[i]!)));
    for (const r of responses) {
      expect(r.headers['content-length']).toBeDefined();
      expect(r.headers['transfer-encoding']).toBeUndefined();
      expect(r.headers.connection).toBe('keep-alive');
    }
    socket.destroy();
    await waitFor(() => senderQuiet(sender.stats()), 10_000, 'quiet sender');
    const stats = sender.stats();
    if (URING) {
      expect(stats.zcOpsSubmitted).toBeGreaterThanOrEqual(4);
      expect(stats.bytesSent).toBe(bodies[0]!.length * 2 + bodies[1]!.length + bodies[2]!.length);
    } else {
      expect(stats.opsSubmitted).toBe(0);
    }
    expect(errors).toEqual([]);
  });

  it('works with a real keep-alive client across many requests', async () => {
    const body = randomBytes(2 * MiB);
    const { url, sender } = await serve((_req, res, s) => sendBody(res, body, { sender: s }));
    const agent = new Agent({ connections: 1 });
    cleanups.push(() => agent.close());
    for (let i = 0; i < 10; i++) {
      const res = await request(url, { dispatcher: agent });
      expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(body));
    }
    await waitFor(() => senderQuiet(sender.stats()), 10_000, 'quiet sender');
  });

  it('HEAD announces the length and sends no body; 204 and 304 send nothing', async () => {
    const body = randomBytes(256 * KiB);
    const { port, sender } = await serve(async (req, res, s) => {
      if (req.url === '/204') res.statusCode = 204;
      if (req.url === '/304') res.statusCode = 304;
      const expected = req.method === 'HEAD' || req.url !== '/' ? ['no-body'] : ['no-socket', MODE === 'copy' ? 'copy-backend' : null];
      expect(expected).toContain(plainBodyReason(res, body.length, s));
      await sendBody(res, body, { sender: s });
    });
    const text = 'HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /204 HTTP/1.1\r\nHost: t\r\n\r\nGET /304 HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n';
    const { responses, socket } = await rawExchange(port, text, 4, [true, false, false, false]);
    socket.destroy();
    expect(responses.map((r) => r.status)).toEqual([200, 204, 304, 200]);
    expect(responses[0]!.headers['content-length']).toBe(String(body.length));
    expect(responses[1]!.headers['content-length']).toBeUndefined();
    expect(responses[2]!.headers['content-length']).toBeUndefined();
    expect(sha256(responses[3]!.body)).toBe(sha256(body));
  });

  it('writes small bodies and strict-content-length responses through node:http with the same bytes', async () => {
    const small = randomBytes(1000);
    const large = randomBytes(512 * KiB);
    const { port, sender } = await serve(async (req, res, s) => {
      if (req.url === '/small') {
        expect(plainBodyReason(res, small.length, s)).toBe(MODE === 'copy' ? 'copy-backend' : 'below-threshold');
        return sendBody(res, small, { sender: s });
      }
      res.strictContentLength = true;
      expect(plainBodyReason(res, large.length, s)).toBe('strict-content-length');
      return sendBody(res, large, { sender: s });
    });
    const { responses, socket } = await rawExchange(port, 'GET /small HTTP/1.1\r\nHost: t\r\n\r\nGET /strict HTTP/1.1\r\nHost: t\r\n\r\n', 2);
    socket.destroy();
    expect(sha256(responses[0]!.body)).toBe(sha256(small));
    expect(responses[0]!.headers['content-length']).toBe('1000');
    expect(sha256(responses[1]!.body)).toBe(sha256(large));
    expect(sender.stats().opsSubmitted).toBe(0);
  });

  it('handles pipelined responses that have no socket yet', async () => {
    const bodies = Array.from({ length: 8 }, (_, i) => randomBytes(100 * KiB + i * 1000));
    const seen: Array<string | null> = [];
    const { port, sender } = await serve(async (req, res, s) => {
      const i = Number(req.url!.slice(1));
      seen[i] = plainBodyReason(res, bodies[i]!.length, s);
      // Finish out of order: later requests answer first and must wait their turn.
      await new Promise((r) => setTimeout(r, (8 - i) * 5));
      await sendBody(res, bodies[i]!, { sender: s });
    });
    const text = bodies.map((_, i) => `GET /${i} HTTP/1.1\r\nHost: t\r\n\r\n`).join('');
    const { responses, socket } = await rawExchange(port, text, 8);
    socket.destroy();
    expect(responses.map((r) => sha256(r.body))).toEqual(bodies.map((b) => sha256(b)));
    expect(seen.slice(1)).toContain('no-socket');
    await waitFor(() => senderQuiet(sender.stats()), 10_000, 'quiet sender');
  });

  it('rejects with a typed error when the client goes away mid-body; nothing is leaked', async () => {
    const body = randomBytes(32 * MiB);
    const outcomes: unknown[] = [];
    const { port, sender } = await serve(async (_req, res, s) => {
      try {
        await sendBody(res, body, { sender: s });
        outcomes.push('sent');
      } catch (err) {
        outcomes.push(err);
      }
    });
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    await once(socket, 'data');
    socket.destroy();
    await waitFor(() => outcomes.length === 1, 10_000, 'sendBody to settle');
    // On the copy path libuv may already hold every byte; on the ring the send fails.
    if (outcomes[0] !== 'sent') {
      expect(outcomes[0]).toBeInstanceOf(ZcSendError);
      expect(['ZCSEND_ERR_SOCKET_CLOSED', 'ZCSEND_ERR_SEND_FAILED', 'ZCSEND_ERR_CANCELLED']).toContain((outcomes[0] as ZcSendError).code);
    }
    await waitFor(() => senderQuiet(sender.stats()), 10_000, 'quiet sender');
    const stats = sender.stats();
    expect(stats.pinnedBytes).toBe(0);
    expect(stats.opsReleased).toBe(stats.opsSubmitted);
  });

  it('refuses non-bytes and ended responses with typed errors', async () => {
    const { url } = await serve(async (_req, res, s) => {
      await expect(sendBody(res, 'text' as unknown as Uint8Array, { sender: s })).rejects.toMatchObject({ code: 'ZCSEND_ERR_INVALID_ARG' });
      res.end('done');
      await expect(sendBody(res, Buffer.alloc(10), { sender: s })).rejects.toMatchObject({ code: 'ZCSEND_ERR_INVALID_ARG' });
    });
    const res = await request(url);
    expect(await res.body.text()).toBe('done');
  });

  it('falls back for HTTP/2 (compat API) with the same bytes', async () => {
    const body = randomBytes(300 * KiB);
    const sender = testSender();
    const reasons: Array<string | null> = [];
    const server = http2.createServer((_req, res) => {
      const r = res as unknown as http.ServerResponse;
      reasons.push(plainBodyReason(r, body.length, sender));
      sendBody(r, body, { sender }).catch(() => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(async () => {
      client.close();
      await new Promise((r) => server.close(r));
      await sender.destroy();
    });
    const stream = client.request({ ':path': '/' });
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    await once(stream, 'end');
    expect(headers[':status']).toBe(200);
    expect(headers['content-length']).toBe(String(body.length));
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(body));
    expect(reasons).toEqual(['http2']);
    expect(sender.stats().opsSubmitted).toBe(0);
  });

  const openssl = spawnSync('openssl', ['version']).status === 0;
  it.runIf(openssl)('falls back for TLS with the same bytes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcserve-tls-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const made = spawnSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ]);
    expect(made.status).toBe(0);
    const body = randomBytes(1 * MiB);
    const sender = testSender();
    const reasons: Array<string | null> = [];
    const server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) }, (_req, res) => {
      reasons.push(plainBodyReason(res, body.length, sender));
      sendBody(res, body, { sender }).catch(() => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const agent = new Agent({ connect: { rejectUnauthorized: false } });
    cleanups.push(async () => {
      await agent.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await sender.destroy();
    });
    const res = await request(`https://127.0.0.1:${port}/`, { dispatcher: agent });
    expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(body));
    expect(reasons).toEqual([MODE === 'copy' ? 'tls' : 'tls']);
    expect(sender.stats().opsSubmitted).toBe(0);
  });
});
