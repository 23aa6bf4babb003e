// Socket timeouts against the kernel's count (core's StallCheck): a client reading slowly but
// steadily gets its whole body through zcSend (Buffer replies, and @fastify/static files by the
// zc-cache and splice engines) although no op completes within the timeout; a stalled one is
// still reset and leaves nothing pinned.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { MODE, RUNNABLE, buildApp, closeApps, listen, pluginOptions, randomBytes, sha256, waitFor } from './helpers.js';
import { pacedGet, stalledClient } from '@zcsend/test-utils';

const KiB = 1024;
const MiB = 1024 * KiB;
const TIMEOUT_MS = 300;
const FILE_ENGINES = ['zc-cache', 'splice'] as const;

let dir: string;
const bodies: Record<string, Buffer> = {};
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-fastify-slow-'));
  // Larger than the socket buffers of both ends on loopback, so the reader's pace shows.
  bodies['slow.bin'] = randomBytes(4 * MiB + 77);
  bodies['stall.bin'] = randomBytes(32 * MiB);
  for (const [name, data] of Object.entries(bodies)) fs.writeFileSync(path.join(dir, name), data);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(closeApps);

/** ZCSEND_TEST_MIN_PROGRESS=0 runs the suite as before the check (to see the slow-reader test fail). */
function minProgressFromEnv(): { minProgressBytes?: number } {
  const v = process.env.ZCSEND_TEST_MIN_PROGRESS;
  return v === undefined ? {} : { minProgressBytes: Number(v) };
}

async function app(engine: (typeof FILE_ENGINES)[number]): Promise<{ app: FastifyInstance; port: number }> {
  const a = await buildApp({
    plugin: pluginOptions({ files: { engine }, ...minProgressFromEnv() }),
    fastify: { connectionTimeout: TIMEOUT_MS, keepAliveTimeout: TIMEOUT_MS },
    routes: async (f) => {
      await f.register(fastifyStatic, { root: dir, prefix: '/static/' });
      f.get<{ Params: { name: string } }>('/bytes/:name', (req, reply) => reply.zcSend(bodies[req.params.name]!));
    },
  });
  const url = await listen(a);
  return { app: a, port: Number(new URL(url).port) };
}

function quiet(a: FastifyInstance): boolean {
  const { replies, sender, files } = a.zcSend.stats();
  return replies.inFlight === 0 && sender.inFlightOps === 0 && sender.pinnedBytes === 0 && sender.pendingNotifications === 0 && files!.inFlightBytes === 0 && files!.activeSends === 0;
}

/** An app per file engine, and `name` asked three ways: a Buffer reply and a static file from each engine. */
async function bothEngines(name: string) {
  const apps = { 'zc-cache': await app('zc-cache'), splice: await app('splice') };
  const cases = [
    ['bytes', apps['zc-cache'], `/bytes/${name}`],
    ['zc-cache', apps['zc-cache'], `/static/${name}`],
    ['splice', apps.splice, `/static/${name}`],
  ] as const;
  return { apps, cases };
}

describe.runIf(RUNNABLE)(`slow and stalled clients against a ${TIMEOUT_MS} ms timeout (${MODE})`, () => {
  it('a slow but steady reader (64 KiB every 50 ms) gets Buffer replies and static files byte-exact', async () => {
    const { apps, cases } = await bothEngines('slow.bin');
    const results = await Promise.all(cases.map(([, a, target]) => pacedGet(a.port, target, { bytes: 64 * KiB, everyMs: 50 })));
    expect(Object.fromEntries(results.map((r, i) => [cases[i]![0], r.error]))).toEqual({ bytes: null, 'zc-cache': null, splice: null });
    results.forEach((r, i) => {
      const what = cases[i]![0];
      expect(r.status, what).toBe(200);
      expect(sha256(r.body), what).toBe(sha256(bodies['slow.bin']!));
      expect(r.ms, what).toBeGreaterThan(4 * TIMEOUT_MS);
    });
    for (const a of Object.values(apps)) {
      await waitFor(() => quiet(a.app), 5_000, 'quiet');
      expect(a.app.zcSend.stats().timeouts).toMatchObject({ stalled: 0, unknown: 0 });
    }
    // SEND_ZC ops of up to 4 MiB: timeouts came and the connections were kept.
    const v = apps['zc-cache'].app.zcSend.stats().timeouts;
    if (MODE === 'uring') expect(v.watching + v.progressing).toBeGreaterThanOrEqual(1);
  });

  it('a stalled reader is reset within two timeouts and nothing stays pinned', async () => {
    const { apps, cases } = await bothEngines('stall.bin');
    const clients = await Promise.all(cases.map(([, a, target]) => stalledClient(a.port, target)));
    // The server lets go of every connection (a reset where the Sender held buffers, else Node's FIN,
    // which the paused client never reads up to).
    for (const a of Object.values(apps)) await waitFor(() => connections(a.app) === 0, 5_000, 'connections closed');
    for (const [i, [what, a]] of cases.entries()) {
      await waitFor(() => quiet(a.app), 5_000, `${what} released`);
      expect(clients[i]!.bytesRead, what).toBeLessThan(32 * MiB);
      clients[i]!.destroy();
    }
    if (MODE === 'uring') {
      // The Sender held the Buffer reply and the zc-cache file: the plugin judged and reset them.
      expect(apps['zc-cache'].app.zcSend.stats().timeouts.stalled).toBe(2);
      expect(apps['zc-cache'].app.zcSend.stats().timeouts.progressing).toBe(0);
    }
  });
});

const connectionCounts = new WeakMap<FastifyInstance, number>();
function connections(a: FastifyInstance): number {
  a.server.getConnections((_err, n) => connectionCounts.set(a, n));
  return connectionCounts.get(a) ?? -1;
}
