// Socket timeouts against the kernel's count (core's StallCheck): a client that reads slowly but
// steadily gets its whole body although no op completes within the timeout; a stalled one, or
// one that trickles below the minimum progress, is still reset and leaves nothing held.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { KiB, MODE, MiB, makeTree, randomBytes, serverQuiet, sha256, startServer, waitFor, type Running, type Tree } from './helpers.js';
import { pacedGet, stalledClient } from '@zcsend/test-utils';
import { createFileServer } from '../src/index.js';

const TIMEOUT_MS = 300;
const ENGINES = ['zc-cache', 'splice', 'auto'] as const;

let tree: Tree;
beforeAll(() => {
  tree = makeTree();
  // Larger than the socket buffers of both ends on loopback, so the reader's pace shows.
  tree.write('slow.bin', randomBytes(4 * MiB + 77));
  tree.write('stall.bin', randomBytes(32 * MiB));
});
afterAll(() => tree?.cleanup());

async function withServers(body: (servers: Record<(typeof ENGINES)[number], Running>) => Promise<void>): Promise<void> {
  // The keep-alive timeout applies once a response finished while the kernel still holds its tail.
  const started = await Promise.all(
    ENGINES.map((engine) => startServer({ root: tree.root, engine, timeoutMs: TIMEOUT_MS, keepAliveTimeoutMs: TIMEOUT_MS, stats: true, ...minProgressFromEnv() })),
  );
  try {
    await body(Object.fromEntries(ENGINES.map((e, i) => [e, started[i]!])) as Record<(typeof ENGINES)[number], Running>);
  } finally {
    await Promise.all(started.map((s) => s.close()));
  }
}

describe(`slow and stalled clients against a ${TIMEOUT_MS} ms timeout (${MODE})`, () => {
  it('a slow but steady reader (64 KiB every 50 ms) gets its whole body byte-exact, on every engine', async () => {
    await withServers(async (servers) => {
      const results = await Promise.all(ENGINES.map((e) => pacedGet(servers[e].port, '/slow.bin', { bytes: 64 * KiB, everyMs: 50 })));
      expect(Object.fromEntries(results.map((r, i) => [ENGINES[i], r.error]))).toEqual({ 'zc-cache': null, splice: null, auto: null });
      results.forEach((r, i) => {
        const engine = ENGINES[i]!;
        expect(r.status, engine).toBe(200);
        expect(r.body.length, engine).toBe(tree.files['slow.bin']!.length);
        expect(sha256(r.body), engine).toBe(sha256(tree.files['slow.bin']!));
        // It really was slow: several timeout periods long.
        expect(r.ms, engine).toBeGreaterThan(4 * TIMEOUT_MS);
      });
      for (const engine of ENGINES) {
        const s = servers[engine];
        await waitFor(() => serverQuiet(s), 5_000, `${engine} quiet`);
        const { http } = s.fileServer.stats();
        expect(http.timeouts, engine).toBe(0);
        expect(http.timeoutVerdicts.stalled, engine).toBe(0);
        expect(http.timeoutVerdicts.unknown, engine).toBe(0);
      }
      if (MODE === 'uring') {
        // SEND_ZC ops of up to 4 MiB: timeouts came (no op completed within one) and the connection was kept.
        // (Splice ops complete per pipeful, so at this pace its timer is refreshed in time.)
        const v = servers['zc-cache'].fileServer.stats().http.timeoutVerdicts;
        expect(v.watching + v.progressing).toBeGreaterThanOrEqual(1);
      }
    });
  });

  it('a stalled reader is reset within two timeouts and its sends released, on every engine', async () => {
    await withServers(async (servers) => {
      const clients = await Promise.all(ENGINES.map((e) => stalledClient(servers[e].port, '/stall.bin')));
      for (const [i, engine] of ENGINES.entries()) {
        const s = servers[engine];
        await waitFor(() => s.fileServer.stats().http.timeouts >= 1, 5_000, `${engine} timeout`);
        await waitFor(() => serverQuiet(s) && s.fileServer.stats().http.inFlight === 0, 5_000, `${engine} released`);
        const stats = s.fileServer.stats();
        expect(stats.sender.pinnedBytes, engine).toBe(0);
        expect(stats.sender.inFlightOps, engine).toBe(0);
        expect(stats.http.timeoutVerdicts.stalled, engine).toBe(1);
        expect(stats.http.timeoutVerdicts.progressing, engine).toBe(0);
        const client = clients[i]!;
        client.resume();
        if (!client.destroyed) await once(client, 'close');
        expect(client.bytesRead, engine).toBeLessThan(32 * MiB);
      }
    });
  });

  it('a client trickling less than minProgressBytes per timeout is cut', async () => {
    const s = await startServer({ root: tree.root, engine: 'zc-cache', timeoutMs: TIMEOUT_MS, minProgressBytes: 1 * MiB });
    try {
      // One read (at most 64 KiB) every 100 ms: at most 192 KiB per period, progress but below the floor.
      const r = await pacedGet(s.port, '/stall.bin', { bytes: 1, everyMs: 100, giveUpMs: 8_000 });
      expect(r.error).not.toBeNull();
      expect(r.body.length).toBeLessThan(32 * MiB);
      await waitFor(() => serverQuiet(s), 5_000, 'released');
      expect(s.fileServer.stats().http.timeoutVerdicts.stalled).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('minProgressBytes 0 resets at the first timeout, as before the check', async () => {
    const s = await startServer({ root: tree.root, engine: 'zc-cache', timeoutMs: TIMEOUT_MS, minProgressBytes: 0 });
    try {
      const client = await stalledClient(s.port, '/stall.bin');
      await waitFor(() => s.fileServer.stats().http.timeouts >= 1, 5_000, 'timeout');
      expect(s.fileServer.stats().http.timeoutVerdicts).toMatchObject({ watching: 0, unknown: 1 });
      client.destroy();
      await waitFor(() => serverQuiet(s), 5_000, 'released');
    } finally {
      await s.close();
    }
    expect(() => createFileServer({ root: tree.root, minProgressBytes: -1 })).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_OPTION' }));
  });

  it('reports the verdicts and rejected file sends by code in /_zcsend/metrics', async () => {
    await withServers(async (servers) => {
      const s = servers['zc-cache'];
      const client = await stalledClient(s.port, '/stall.bin');
      await waitFor(() => s.fileServer.stats().http.timeouts >= 1, 5_000, 'timeout');
      await waitFor(() => s.fileServer.stats().files.errors >= 1, 5_000, 'rejected send');
      client.destroy();
      const stats = s.fileServer.stats();
      const codes = Object.entries(stats.files.errorCodes);
      expect(codes.reduce((n, [, v]) => n + v, 0)).toBe(stats.files.errors);
      const text = s.fileServer.metrics();
      expect(text).toContain('zcsend_http_timeout_verdicts_total{verdict="stalled"} 1');
      for (const [code, n] of codes) expect(text).toContain(`zcsend_file_errors_total{code="${code}"} ${n}`);
      const json = (await (await fetch(s.url + '_zcsend/stats')).json()) as { files: { errorCodes: Record<string, number> } };
      expect(json.files.errorCodes).toEqual(stats.files.errorCodes);
    });
  });
});

/** ZCSEND_TEST_MIN_PROGRESS=0 runs the suite as before the check (to see the slow-reader test fail). */
function minProgressFromEnv(): { minProgressBytes?: number } {
  const v = process.env.ZCSEND_TEST_MIN_PROGRESS;
  return v === undefined ? {} : { minProgressBytes: Number(v) };
}
