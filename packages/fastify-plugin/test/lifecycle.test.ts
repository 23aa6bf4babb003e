// Registration, options, explicit API, TLS/HTTP/2, client aborts, close() draining, CommonJS.
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { request } from 'undici';
import { Sender, getSender } from '@zcsend/core';
import { zcSend, type ZcSendOptions } from '../src/index.js';
import { MODE, RUNNABLE, buildApp, closeApps, fetch, keepAliveAgent, listen, pluginOptions, randomBytes, sha256, waitFor } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
const T = 32 * 1024;

afterEach(closeApps);

function expectQuiet(app: FastifyInstance): void {
  const { replies, sender } = app.zcSend.stats();
  expect(replies.inFlight).toBe(0);
  expect(sender.inFlightOps).toBe(0);
  expect(sender.pendingNotifications).toBe(0);
  expect(sender.pinnedBytes).toBe(0);
}

function quiet(app: FastifyInstance): boolean {
  const { replies, sender } = app.zcSend.stats();
  return replies.inFlight === 0 && sender.inFlightOps === 0 && sender.pendingNotifications === 0;
}

/** Requests `urlPath`, reads at least `bytes` of the response, then resets the connection. */
async function abortAfter(base: string, urlPath: string, bytes: number): Promise<number> {
  const url = new URL(base);
  const socket = net.connect(Number(url.port), url.hostname);
  socket.write(`GET ${urlPath} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= bytes) {
        socket.pause();
        resolve();
      }
    });
  });
  socket.resetAndDestroy();
  await once(socket, 'close');
  return received;
}

describe('registration', () => {
  const bad: Array<[string, unknown]> = [
    ['negative threshold', { threshold: -1 }],
    ['fractional threshold', { threshold: 1.5 }],
    ['string threshold', { threshold: '1024' }],
    ['unknown option', { thresold: 1024 }],
    ['non-boolean adaptive', { adaptive: 'yes' }],
    ['chunkSize too small', { chunkSize: 5 }],
    ['unknown backend', { backend: 'fast' }],
    ['files not boolean/object', { files: 'yes' }],
    ['unknown files option', { files: { cache: 1 } }],
    ['negative cacheBytes', { files: { cacheBytes: -1 } }],
    ['sender not a Sender', { sender: { name: 'x' } }],
    ['options not an object', 42],
  ];
  for (const [name, options] of bad) {
    it(`rejects ${name} with FST_ZC_INVALID_OPTION`, async () => {
      const app = Fastify();
      await expect(app.register(zcSend, options as ZcSendOptions).ready()).rejects.toMatchObject({
        code: 'FST_ZC_INVALID_OPTION',
        name: 'FastifyError',
      });
      await app.close();
    });
  }

  it('rejects a sender combined with Sender options', async () => {
    const sender = new Sender({ backend: 'copy' });
    const app = Fastify();
    await expect(app.register(zcSend, { sender, adaptive: false }).ready()).rejects.toMatchObject({ code: 'FST_ZC_INVALID_OPTION' });
    await app.close();
    await sender.close();
  });

  it('is a fastify-plugin for Fastify 5 with a name, exported as default and named', async () => {
    const mod = await import('../src/index.js');
    expect(mod.default).toBe(mod.zcSend);
    const meta = (zcSend as unknown as Record<symbol, { fastify?: string; name?: string }>)[Symbol.for('plugin-meta')];
    expect(meta).toMatchObject({ fastify: '5.x', name: '@zcsend/fastify' });
    expect((zcSend as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')]).toBe(true);
  });
});

describe.runIf(RUNNABLE)(`lifecycle (${MODE})`, () => {
  it('shares the thread Sender without Sender options, owns one with them', async () => {
    const shared = await buildApp({ plugin: { threshold: T }, routes: () => {} });
    await shared.ready();
    expect(shared.zcSend.sender).toBe(getSender());
    const owned = await buildApp({ plugin: pluginOptions({ threshold: T, adaptive: true }), routes: () => {} });
    await owned.ready();
    expect(owned.zcSend.sender).not.toBe(getSender());
    expect(owned.zcSend.backend).toBe(MODE === 'uring' ? 'io_uring' : 'copy');
    if (MODE === 'copy') expect(owned.zcSend.fallbackReason).toMatch(/ZCSEND_DISABLE/);
    else expect(owned.zcSend.fallbackReason).toBeNull();
    await closeApps();
    expect(owned.zcSend.sender.isOpen).toBe(false);
    expect(shared.zcSend.sender.isOpen).toBe(true);
  });

  it('never closes a Sender it was given', async () => {
    const sender = new Sender(MODE === 'uring' ? { adaptive: false } : {});
    const app = await buildApp({ plugin: { sender, threshold: T }, routes: (a) => a.get('/', (_r, reply) => reply.zcSend(randomBytes(T))) });
    const base = await listen(app);
    expect((await fetch(base)).body.length).toBe(T);
    await closeApps();
    expect(sender.isOpen).toBe(true);
    await sender.close();
  });

  it('a client abort mid-body leaves the server healthy and nothing in flight (byte body)', async () => {
    const big = randomBytes(64 * MiB);
    const small = randomBytes(T + 5);
    const app = await buildApp({
      plugin: pluginOptions({ threshold: T }),
      routes(a) {
        a.get('/big', (_req, reply) => reply.zcSend(big));
        a.get('/small', (_req, reply) => reply.send(small));
      },
    });
    const base = await listen(app);
    for (let i = 0; i < 3; i++) expect(await abortAfter(base, '/big', MiB)).toBeGreaterThanOrEqual(MiB);
    await waitFor(() => quiet(app), 15_000, 'in-flight sends to settle after the aborts');
    expectQuiet(app);
    expect(app.zcSend.stats().replies.failed).toBe(3);
    // Healthy: full bodies still go out byte-exact, through the plugin.
    expect(sha256((await fetch(`${base}/big`)).body)).toBe(sha256(big));
    expect(sha256((await fetch(`${base}/small`)).body)).toBe(sha256(small));
    await waitFor(() => quiet(app), 10_000, 'quiet');
    expect(app.zcSend.stats().replies.failed).toBe(3);
  });

  it('a client abort mid-body leaves the server healthy and nothing in flight (file body)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-fastify-abort-'));
    try {
      const data = randomBytes(64 * MiB);
      fs.writeFileSync(path.join(dir, 'big.bin'), data);
      const app = await buildApp({ plugin: pluginOptions({ threshold: T }), routes: (a) => void a.register(fastifyStatic, { root: dir }) });
      const base = await listen(app);
      for (let i = 0; i < 2; i++) await abortAfter(base, '/big.bin', MiB);
      await waitFor(() => quiet(app) && app.zcSend.stats().files!.activeSends === 0, 15_000, 'file sends to settle');
      expectQuiet(app);
      expect(app.zcSend.stats().replies.failed).toBe(2);
      expect(sha256((await fetch(`${base}/big.bin`)).body)).toBe(sha256(data));
      // The reply is counted when its file send settles, which may be just after the client has every byte.
      await waitFor(() => app.zcSend.stats().replies.files === 3, 5_000, 'the third file reply to settle');
      expect(app.zcSend.stats().replies.failed).toBe(2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close() waits for bodies in flight and their notifications', async () => {
    const big = randomBytes(64 * MiB);
    // A Sender option (chunkSize) makes the Sender plugin-owned in both modes: close() closes it.
    const options = { ...pluginOptions({ threshold: T }), chunkSize: 1 << 20 };
    const app = await buildApp({ plugin: options, routes: (a) => a.get('/big', (_req, reply) => reply.zcSend(big)) });
    const base = await listen(app);
    const agent = keepAliveAgent(1);
    const res = await request(`${base}/big`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    // Headers are here, the body is still going out: close now, and read the body meanwhile.
    expect(app.zcSend.stats().replies.inFlight).toBe(1);
    const closed = app.close();
    const body = Buffer.from(await res.body.arrayBuffer());
    // Node's server.close() waits for open connections; a keep-alive client lets go of its own.
    await agent.close();
    await closed;
    expect(sha256(body)).toBe(sha256(big));
    expectQuiet(app);
    expect(app.zcSend.sender.isOpen).toBe(false);
    expect(app.zcSend.stats().sender.opsReleased).toBe(app.zcSend.stats().sender.opsSubmitted);
  });

  it('leaves TLS replies alone', async () => {
    const big = randomBytes(2 * MiB);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-fastify-tls-'));
    fs.writeFileSync(path.join(dir, 'f.bin'), big);
    try {
      const app = await buildApp({
        plugin: pluginOptions({ threshold: T }),
        fastify: {
          https: { key: fs.readFileSync(path.join(here, 'fixtures/tls-key.pem')), cert: fs.readFileSync(path.join(here, 'fixtures/tls-cert.pem')) },
        },
        routes(a) {
          a.get('/big', async () => big);
          a.get('/forced', (_req, reply) => reply.zcSend(big));
          void a.register(fastifyStatic, { root: dir, prefix: '/files/' });
        },
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const base = `https://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`;
      const { Agent } = await import('undici');
      const agent = new Agent({ connect: { ca: fs.readFileSync(path.join(here, 'fixtures/tls-cert.pem')) } });
      for (const p of ['/big', '/forced', '/files/f.bin']) {
        const r = await fetch(base + p, { dispatcher: agent });
        expect(r.status).toBe(200);
        expect(sha256(r.body)).toBe(sha256(big));
      }
      await agent.close();
      const { replies } = app.zcSend.stats();
      expect(replies.bodies + replies.files).toBe(0);
      expect(replies.bypassed.tls).toBe(3);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves HTTP/2 replies alone', async () => {
    const big = randomBytes(2 * MiB);
    const app = Fastify({ http2: true });
    await app.register(zcSend, pluginOptions({ threshold: T }));
    app.get('/big', async () => big);
    app.get('/forced', (_req, reply) => reply.zcSend(big));
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const client = http2.connect(`http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`);
      for (const p of ['/big', '/forced']) {
        const stream = client.request({ ':path': p });
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        await once(stream, 'end');
        expect(sha256(Buffer.concat(chunks))).toBe(sha256(big));
      }
      client.close();
      const { replies } = app.zcSend.stats();
      expect(replies.bodies).toBe(0);
      expect(replies.bypassed.http2).toBe(2);
    } finally {
      await app.close();
    }
  });

  it("require('@zcsend/fastify') works from a CommonJS file", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(here, 'fixtures/require.cjs')], {
      env: process.env,
      timeout: 30_000,
    });
    const out = JSON.parse(stdout) as { sameFunction: boolean; backend: string; bytesMatch: boolean; bodies: number; bypassed: Record<string, number> };
    expect(out.sameFunction).toBe(true);
    expect(out.bytesMatch).toBe(true);
    expect(out.backend).toBe(MODE === 'uring' ? 'io_uring' : 'copy');
    // Default options: adaptive, so on io_uring a loopback byte body is left to Fastify.
    expect(out.bodies).toBe(0);
    expect(out.bypassed).toEqual(MODE === 'uring' ? { loopback: 1 } : { 'copy-backend': 1 });
  });
});
