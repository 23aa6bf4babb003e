import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Agent, request, type Dispatcher } from 'undici';
import { probe } from '@zcsend/core';
import { MODE, REQUIRE_URING, sha256, waitFor } from '@zcsend/test-utils';
import { zcSend, type ZcSendOptions } from '../src/index.js';

export { MODE, randomBytes, sha256, waitFor } from '@zcsend/test-utils';
const machine = probe();
/** Suites run in copy mode, and in uring mode when the ring is usable or required (then they fail without it). */
export const RUNNABLE = MODE === 'copy' || machine.available || REQUIRE_URING;
if (!RUNNABLE) console.warn(`[zcsend] io_uring tests skipped: ${machine.reason}`);

/**
 * Plugin options for this mode: on io_uring, adaptive off so SEND_ZC really runs on loopback
 * (adaptive would switch loopback peers to plain ring sends).
 */
export function pluginOptions(extra: ZcSendOptions = {}): ZcSendOptions {
  return MODE === 'uring' ? { adaptive: false, ...extra } : { ...extra };
}

/**
 * Until every reply body the plugin sent is released. A body is released (and counted in
 * `replies.bodies`) at its last notification, which may come after the client has its bytes.
 */
export function repliesReleased(app: FastifyInstance): Promise<void> {
  return waitFor(() => app.zcSend.stats().replies.inFlight === 0, 10_000, 'replies released');
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino destination that keeps every line. */
export function logCollector(): { lines: LogLine[]; stream: Writable } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  return { lines, stream };
}

export interface AppSetup {
  /** Register the plugin (with these options) or not (the reference app). */
  plugin: ZcSendOptions | null;
  routes: (app: FastifyInstance) => unknown;
  /** Fastify options (logger, http2, https...). */
  fastify?: FastifyServerOptions & Record<string, unknown>;
  /** Plugins registered before zcSend (to test order independence). */
  before?: (app: FastifyInstance) => unknown;
}

const apps: FastifyInstance[] = [];

export async function buildApp(setup: AppSetup): Promise<FastifyInstance> {
  const app = Fastify(setup.fastify ?? {});
  apps.push(app);
  await setup.before?.(app);
  if (setup.plugin) await app.register(zcSend, setup.plugin);
  await setup.routes(app);
  return app;
}

/** Listens on 127.0.0.1, port 0; returns the base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/** Closes every app built since the last call (afterEach). */
export async function closeApps(): Promise<void> {
  await Promise.all(apps.splice(0).map((app) => app.close()));
}

export interface Fetched {
  status: number;
  /** Response headers without `date` (the one header two runs cannot share). */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export async function fetch(
  url: string,
  options: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; dispatcher?: Dispatcher } = {},
): Promise<Fetched> {
  // Without a dispatcher: a one-off agent, closed after the reply, so no idle keep-alive
  // connection holds app.close() until Fastify's keep-alive timeout.
  const dispatcher = options.dispatcher ?? new Agent();
  try {
    const res = await request(url, { method: options.method ?? 'GET', headers: options.headers, dispatcher });
    const body = Buffer.from(await res.body.arrayBuffer());
    const { date: _date, ...headers } = res.headers;
    return { status: res.statusCode, headers, body };
  } finally {
    if (!options.dispatcher) await dispatcher.close();
  }
}

/** A keep-alive agent (closed by the caller). */
export function keepAliveAgent(connections = 1): Agent {
  return new Agent({ connections, pipelining: 1, keepAliveTimeout: 30_000 });
}

export interface FetchCase {
  path: string;
  method?: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
}

/** The cases one after another over one keep-alive connection. */
export async function fetchInOrder(base: string, cases: FetchCase[]): Promise<Fetched[]> {
  const agent = keepAliveAgent(1);
  try {
    const out: Fetched[] = [];
    for (const c of cases) out.push(await fetch(base + c.path, { method: c.method ?? 'GET', headers: c.headers, dispatcher: agent }));
    return out;
  } finally {
    await agent.close();
  }
}

/** What must match between plain Fastify and the plugin: status, headers but Date, body bytes. */
export function comparable(f: Fetched): { status: number; headers: Fetched['headers']; sha: string; length: number } {
  return { status: f.status, headers: f.headers, sha: sha256(f.body), length: f.body.length };
}

/**
 * The same routes served twice on 127.0.0.1: by plain Fastify (the reference) and with zcSend
 * registered (`options` on top of this mode's pluginOptions). Returns both base URLs and the zcSend app.
 */
export async function sideBySide(
  routes: AppSetup['routes'],
  options: ZcSendOptions = {},
): Promise<{ plain: string; zc: string; app: FastifyInstance }> {
  const plain = await listen(await buildApp({ plugin: null, routes }));
  const app = await buildApp({ plugin: pluginOptions(options), routes });
  const zc = await listen(app);
  return { plain, zc, app };
}

export interface RawResponse {
  /** Status line and header lines exactly as sent (order and case), without Date. */
  head: string[];
  body: Buffer;
}

/** One request over a fresh connection with `Connection: close`; reads until the server closes. */
export function rawFetch(base: string, method: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      if (split < 0) return reject(new Error(`no header block in ${all.length} bytes`));
      const head = all.subarray(0, split).toString('latin1').split('\r\n').filter((l) => !/^date:/i.test(l));
      resolve({ head, body: all.subarray(split + 4) });
    });
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n${extra}\r\n`);
  });
}
