// The demo app: Fastify 5 with @zcsend/fastify, the sample files through @fastify/static
// (/static/) and through @zcsend/http-server's serveStatic (/files/, zcserve-style), large cached
// Buffers (/api/blob/:name), and the dashboard with its stats, SSE feed and load generator.
import type * as http from 'node:http';
import type * as net from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import zcSend, { type ZcSendStats } from '@zcsend/fastify';
import { serveStatic, type StaticHandler, type StaticStats } from '@zcsend/http-server';
import { createApiBuffers } from './api-buffers.js';
import { loadAssets, readDashboardTemplate, renderTemplate } from './assets.js';
import { DemoError } from './errors.js';
import { demoInfo, type DemoInfo } from './info.js';
import type { LoadTarget } from './load-plan.js';
import { LoadController, loopbackOrigin, type LoadStatus } from './load.js';
import { MetricsSampler, type Reading, type Sample } from './metrics.js';
import type { SampleSet } from './samples.js';

export interface DemoAppOptions {
  samples: SampleSet;
  /** Core Sender `adaptive`; the demo's default is false (SEND_ZC on loopback too). */
  adaptive: boolean;
  logLevel?: string;
  /** Bytes of each file cache (one for @fastify/static via the plugin, one for /files/). */
  cacheBytes?: number;
}

export interface DemoStats {
  info: DemoInfo;
  /**
   * Body bytes zcsend had the kernel accept: through the Sender, and spliced by the file engines
   * (splice bytes never pass through Sender.send, so they are not in its bytesSent).
   */
  sent: { sender: number; spliced: number; total: number };
  /** `fastify.zcSend.stats()`: backend, replies, Sender counters, plugin file engines. */
  zcSend: ZcSendStats;
  /** serveStatic's counters for /files/ (its own file engines, same Sender). */
  files: StaticStats;
  http: HttpCounters;
  load: LoadStatus;
}

export interface HttpCounters {
  responses: number;
  /** Body bytes of finished responses with a Content-Length. */
  bytes: number;
}

export interface DemoApp {
  app: FastifyInstance;
  info: DemoInfo;
  load: LoadController;
  sampler: MetricsSampler;
  /** Every URL the load generator fetches, with the expected length and sha256. */
  targets: readonly LoadTarget[];
  stats(): DemoStats;
  listen(port: number, host: string): Promise<{ url: string; address: net.AddressInfo }>;
  /** Stops the load and the SSE streams, then closes Fastify (which drains every notification). */
  close(): Promise<void>;
}

const MiB = 1 << 20;

/**
 * The Content-Length a response went out with. serveStatic writes its header block from an array
 * (`writeHead(status, [name, value, ...])`), which `getHeader()` does not see, so fall back to the
 * header block Node kept (`_header`, the string it wrote).
 */
function contentLength(res: http.ServerResponse): number | null {
  const stored = res.getHeader('content-length');
  if (stored !== undefined) return Number.isFinite(Number(stored)) ? Number(stored) : null;
  const block = (res as unknown as { _header?: unknown })._header;
  const match = typeof block === 'string' ? /\r\ncontent-length:[ \t]*(\d+)/i.exec(block) : null;
  return match ? Number(match[1]) : null;
}

export async function createDemoApp(options: DemoAppOptions): Promise<DemoApp> {
  const { samples, adaptive } = options;
  const cacheBytes = options.cacheBytes ?? 128 * MiB;
  const app = Fastify({ logger: { level: options.logLevel ?? 'warn' }, return503OnClosing: true });

  await app.register(zcSend, { adaptive, files: { cacheBytes } });
  const api = app.zcSend;
  const info = demoInfo(api, adaptive);

  // zcserve-style: the raw node:http handler from @zcsend/http-server, sharing the plugin's Sender
  // so one set of counters covers every body.
  const filesHandler: StaticHandler = serveStatic(samples.dir, { sender: api.sender, listing: true, cacheBytes, index: false });
  await app.register(fastifyStatic, { root: samples.dir, prefix: '/static/', index: false });

  const blobs = createApiBuffers();
  const assets = loadAssets();
  const template = readDashboardTemplate();
  const page = renderTemplate(template, {
    backend: info.backend,
    why: info.why,
    kernel: info.probe.kernel,
  });

  const targets: LoadTarget[] = [
    ...samples.files.flatMap((f) => [
      { path: `/files/${f.name}`, bytes: f.bytes, sha256: f.sha256 },
      { path: `/static/${f.name}`, bytes: f.bytes, sha256: f.sha256 },
    ]),
    ...[...blobs.values()].map((b) => ({ path: `/api/blob/${b.name}`, bytes: b.body.length, sha256: b.sha256 })),
  ];

  let listening: net.AddressInfo | null = null;
  const load = new LoadController(
    () => (listening ? loopbackOrigin(listening) : new DemoError('ZCSEND_DEMO_ERR_NOT_LOOPBACK', 'the server is not listening yet', 409)),
    targets,
  );

  const httpCounters: HttpCounters = { responses: 0, bytes: 0 };
  app.addHook('onResponse', (request, reply, done) => {
    httpCounters.responses++;
    const res = reply.raw;
    const length = contentLength(res);
    if (request.raw.method !== 'HEAD' && res.writableFinished && length !== null) httpCounters.bytes += length;
    done();
  });

  const stats = (): DemoStats => {
    const reading = read();
    return {
      info,
      sent: {
        sender: reading.sender.bytesSent,
        spliced: reading.splicedBytes,
        total: reading.sender.bytesSent + reading.splicedBytes,
      },
      zcSend: api.stats(),
      files: filesHandler.stats(),
      http: { ...httpCounters },
      load: reading.load,
    };
  };

  /** One reading of every counter the dashboard plots (the Sender's, the file engines', HTTP, load). */
  const read = (): Reading => {
    const s = api.stats();
    const engines = [s.files, filesHandler.fileSender.stats()].filter((f) => f !== null);
    const fileFallbacks: Record<string, number> = {};
    for (const f of engines) {
      for (const [reason, n] of Object.entries(f.fallbacks)) fileFallbacks[reason] = (fileFallbacks[reason] ?? 0) + (n ?? 0);
    }
    return {
      sender: s.sender,
      splicedBytes: engines.reduce((sum, f) => sum + f.byEngine.splice.bytes, 0),
      fileFallbacks,
      bypassed: s.replies.bypassed as Record<string, number>,
      httpBytes: httpCounters.bytes,
      httpResponses: httpCounters.responses,
      load: load.status(),
    };
  };
  const sampler = new MetricsSampler({ read });

  /** Open server-sent-event responses; ended before Fastify closes the server. */
  const streams = new Set<http.ServerResponse>();
  /** Set by preClose: no new load run or stream starts after it. */
  let closing = false;

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _request, reply) => {
    if (err instanceof DemoError) return reply.code(err.statusCode).send({ code: err.code, message: err.message });
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) reply.log.error(err);
    return reply.code(status).send({ code: err.code ?? 'ERROR', message: err.message });
  });

  // Dashboard
  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page));
  app.get<{ Params: { name: string } }>('/assets/:name', (request, reply) => {
    const asset = assets.get(request.params.name);
    if (!asset) return reply.callNotFound();
    return reply.type(asset.contentType).header('cache-control', 'no-cache').send(asset.body);
  });
  app.get('/favicon.ico', (_request, reply) => reply.redirect('/assets/favicon.svg', 301));

  // The zcserve-style mount: hand the raw request to serveStatic, which writes the whole response.
  app.get('/files', (_request, reply) => reply.redirect('/files/', 301));
  app.get('/files/*', (request, reply) => {
    reply.hijack();
    const req = request.raw as http.IncomingMessage & { originalUrl?: string };
    const url = req.url ?? '/';
    req.originalUrl = url;
    req.url = url.slice('/files'.length) || '/';
    filesHandler(req, reply.raw);
  });

  // Large cached Buffers: returned as they are, the plugin decides whether they go zero-copy.
  app.get<{ Params: { name: string } }>('/api/blob/:name', (request, reply) => {
    const blob = blobs.get(request.params.name);
    if (!blob) return reply.code(404).send({ code: 'NOT_FOUND', message: `no blob ${request.params.name}; try ${[...blobs.keys()].join(', ')}` });
    return reply.type('application/octet-stream').header('x-content-sha256', blob.sha256).send(blob.body);
  });

  app.get('/api/samples', () => ({ dir: samples.dir, files: samples.files, targets }));
  app.get('/api/stats', () => stats());
  app.get('/api/load', () => load.status());
  app.post('/api/load', (request: FastifyRequest<{ Body: Record<string, unknown> | null }>, reply: FastifyReply) => {
    if (closing) return reply.code(503).send({ code: 'CLOSING', message: 'the demo is shutting down' });
    const status = load.start(request.body ?? {});
    return reply.code(202).send(status);
  });
  app.delete('/api/load', async () => {
    await load.stop();
    return load.status();
  });

  // Server-sent events: one "hello" with the static facts and the recent history, then one
  // "sample" per second.
  app.get('/api/events', (request, reply) => {
    if (closing) return reply.code(503).send({ code: 'CLOSING', message: 'the demo is shutting down' });
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    const write = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 2000\n\n');
    write('hello', { info, history: sampler.history() });
    const unsubscribe = sampler.subscribe((sample: Sample) => write('sample', sample));
    streams.add(res);
    res.on('close', () => {
      unsubscribe();
      streams.delete(res);
    });
  });

  // Before Fastify closes the server: no new load, no open streams (they would hold it open).
  app.addHook('preClose', async () => {
    closing = true;
    await load.stop();
    sampler.stop();
    for (const res of streams) res.end();
    streams.clear();
  });
  app.addHook('onClose', async () => {
    await filesHandler.close();
  });

  await app.ready();
  sampler.start();

  return {
    app,
    info,
    load,
    sampler,
    targets,
    stats,
    async listen(port, host) {
      await app.listen({ port, host });
      listening = app.server.address() as net.AddressInfo;
      const origin = loopbackOrigin(listening);
      const url = `${origin instanceof DemoError ? `http://${host.includes(':') ? `[${host}]` : host}:${listening.port}` : origin}/`;
      return { url, address: listening };
    },
    close: () => app.close(),
  };
}
