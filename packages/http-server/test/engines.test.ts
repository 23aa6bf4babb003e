// File engines end to end: every engine with full bodies, single and multiple ranges; files past
// 4 GiB; cache invalidation on rewrite; the in-flight byte bound under concurrent load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Agent, request } from 'undici';
import { MODE, MiB, KiB, URING, makeTree, randomBytes, serverQuiet, sha256, startServer, waitFor, type Tree } from './helpers.js';

let tree: Tree;

beforeAll(() => {
  tree = makeTree();
});

afterAll(() => {
  tree?.cleanup();
});

async function fetchBytes(url: string, headers: Record<string, string> = {}, dispatcher?: Agent) {
  const res = await request(url, { headers, ...(dispatcher ? { dispatcher } : {}) });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

function multipartBodies(body: Buffer, contentType: string): Buffer[] {
  const boundary = /boundary=(\S+)/.exec(contentType)![1]!;
  const out: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const delim = body.indexOf(`--${boundary}\r\n`, pos);
    if (delim < 0) break;
    const headEnd = body.indexOf('\r\n\r\n', delim);
    const m = /Content-Range: bytes (\d+)-(\d+)\//.exec(body.subarray(delim, headEnd).toString('latin1'))!;
    const len = Number(m[2]) - Number(m[1]) + 1;
    out.push(body.subarray(headEnd + 4, headEnd + 4 + len));
    pos = headEnd + 4 + len;
  }
  return out;
}

describe(`file engines (${MODE})`, () => {
  for (const engine of ['auto', 'zc-cache', 'splice', 'copy'] as const) {
    it(`engine ${engine}: full bodies, ranges and multipart byte-exact`, async () => {
      const s = await startServer({ root: tree.root, engine, inlineMaxBytes: 0 });
      const agent = new Agent({ connections: 4 });
      try {
        for (let round = 0; round < 2; round++) {
          for (const name of ['small.txt', 'medium.bin', 'large.bin', 'app.js']) {
            const data = tree.files[name]!;
            const full = await fetchBytes(s.url + name, { 'accept-encoding': 'identity' }, agent);
            expect(full.status).toBe(200);
            expect(sha256(full.body), `${engine} ${name}`).toBe(sha256(data));
            const mid = Math.floor(data.length / 2);
            const single = await fetchBytes(s.url + name, { range: `bytes=${mid}-${data.length - 2}`, 'accept-encoding': 'identity' }, agent);
            expect(single.status).toBe(206);
            expect(sha256(single.body)).toBe(sha256(data.subarray(mid, data.length - 1)));
            const multi = await fetchBytes(s.url + name, { range: `bytes=1-2,${mid}-${mid + 99},-7`, 'accept-encoding': 'identity' }, agent);
            expect(multi.status).toBe(206);
            const parts = multipartBodies(multi.body, String(multi.headers['content-type']));
            expect(parts.map((p) => sha256(p))).toEqual([
              sha256(data.subarray(1, 3)),
              sha256(data.subarray(mid, mid + 100)),
              sha256(data.subarray(data.length - 7)),
            ]);
          }
        }
        await waitFor(() => serverQuiet(s), 10_000, 'quiet server');
        const stats = s.fileServer.stats();
        const engines = stats.files.byEngine;
        if (engine === 'zc-cache') expect(engines['zc-cache'].sends).toBeGreaterThan(0);
        if (engine === 'copy') expect(engines['zc-cache'].sends).toBe(0);
        if (engine === 'auto') expect(engines['zc-cache'].sends + engines.copy.sends + engines.splice.sends).toBeGreaterThan(0);
        // Splice needs the ring: with io_uring it really runs (no Sender send ops), without it falls back to copy.
        if (engine === 'splice') expect(engines.splice.sends > 0).toBe(URING);
        expect(stats.files.errors).toBe(0);
        if (URING && engine !== 'splice') expect(stats.sender.zcOpsSubmitted).toBeGreaterThan(0);
        if (!URING) expect(stats.sender.opsSubmitted).toBe(0);
      } finally {
        await agent.close();
        await s.close();
      }
    });
  }

  it('zeroCopy: false (--no-zc) uses the copy backend and the copy engine', async () => {
    const s = await startServer({ root: tree.root, zeroCopy: false });
    try {
      const res = await fetchBytes(s.url + 'large.bin');
      expect(sha256(res.body)).toBe(sha256(tree.files['large.bin']!));
      await waitFor(() => serverQuiet(s) && s.fileServer.stats().http.inFlight === 0, 10_000, 'quiet server');
      const stats = s.fileServer.stats();
      expect(stats.backend).toBe('copy');
      expect(stats.sender.opsSubmitted).toBe(0);
      expect(stats.files.byEngine.copy.sends).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  });

  it('serves files larger than 4 GiB: HEAD, ranges across the 4 GiB boundary and at the end, with every engine', async () => {
    const name = 'huge.bin';
    const file = path.join(tree.root, name);
    const size = 4 * 1024 * MiB + 3 * MiB + 17;
    const boundary = 4 * 1024 * MiB;
    const patchAt = boundary - 256 * KiB;
    const patch = randomBytes(512 * KiB);
    const tail = randomBytes(64 * KiB);
    // Sparse: only the patched pieces take disk space.
    const fd = fs.openSync(file, 'w');
    try {
      fs.ftruncateSync(fd, size);
      fs.writeSync(fd, patch, 0, patch.length, patchAt);
      fs.writeSync(fd, tail, 0, tail.length, size - tail.length);
    } finally {
      fs.closeSync(fd);
    }
    try {
      for (const engine of ['auto', 'zc-cache', 'copy'] as const) {
        const s = await startServer({ root: tree.root, engine });
        try {
          const head = await request(s.url + name, { method: 'HEAD' });
          await head.body.arrayBuffer();
          expect(head.headers['content-length']).toBe(String(size));
          const across = await fetchBytes(s.url + name, { range: `bytes=${patchAt}-${patchAt + patch.length - 1}` });
          expect(across.status).toBe(206);
          expect(across.headers['content-range']).toBe(`bytes ${patchAt}-${patchAt + patch.length - 1}/${size}`);
          expect(sha256(across.body)).toBe(sha256(patch));
          const end = await fetchBytes(s.url + name, { range: `bytes=-${tail.length}` });
          expect(sha256(end.body)).toBe(sha256(tail));
          const multi = await fetchBytes(s.url + name, { range: `bytes=${boundary - 10}-${boundary + 9},${size - 5}-` });
          const parts = multipartBodies(multi.body, String(multi.headers['content-type']));
          expect(parts.map((p) => sha256(p))).toEqual([
            sha256(patch.subarray(boundary - 10 - patchAt, boundary + 10 - patchAt)),
            sha256(tail.subarray(tail.length - 5)),
          ]);
          await waitFor(() => serverQuiet(s), 10_000, 'quiet server');
        } finally {
          await s.close();
        }
      }
    } finally {
      fs.rmSync(file);
    }
  });

  it('a rewritten file is served fresh: at once with statCacheMs 0, within the stat cache time by default', async () => {
    for (const statCacheMs of [0, undefined]) {
      const name = `rewrite-${statCacheMs ?? 'default'}.bin`;
      const first = tree.write(name, randomBytes(300 * KiB));
      const s = await startServer({ root: tree.root, engine: 'zc-cache', ...(statCacheMs === undefined ? {} : { statCacheMs }) });
      try {
        for (let i = 0; i < 3; i++) expect(sha256((await fetchBytes(s.url + name)).body)).toBe(sha256(first));
        expect(s.fileServer.stats().files.cache.hits).toBeGreaterThan(0);
        // Same size, new bytes: only mtime/inode tell the versions apart.
        const second = tree.write(name, randomBytes(300 * KiB));
        const stamp = new Date(Date.now() + 5_000);
        fs.utimesSync(path.join(tree.root, name), stamp, stamp);
        if (statCacheMs === 0) {
          const res = await fetchBytes(s.url + name);
          expect(sha256(res.body)).toBe(sha256(second));
        } else {
          // The old stat is reused for up to a second, then the new version must show.
          const deadline = Date.now() + 5_000;
          let seen = '';
          while (seen !== sha256(second) && Date.now() < deadline) {
            seen = sha256((await fetchBytes(s.url + name)).body);
            if (seen !== sha256(second)) {
              expect(seen).toBe(sha256(first)); // never a mix of the two
              await new Promise((r) => setTimeout(r, 50));
            }
          }
          expect(seen).toBe(sha256(second));
        }
        const range = await fetchBytes(s.url + name, { range: 'bytes=1000-1999' });
        expect(sha256(range.body)).toBe(sha256(second.subarray(1000, 2000)));
        await waitFor(() => serverQuiet(s), 10_000, 'quiet server');
        const cache = s.fileServer.stats().files.cache;
        expect(cache.invalidations + cache.evictions).toBeGreaterThan(0);
      } finally {
        await s.close();
      }
    }
  });

  it('a file renamed over within the stat cache time (an atomic deploy): never its bytes under the old validators; both paths answer the same request with the new version', async () => {
    for (const fastPath of [true, false]) {
      for (const engine of ['auto', 'copy'] as const) {
        const name = `deploy-${engine}-${fastPath ? 'fast' : 'node'}.bin`;
        const before = tree.write(name, randomBytes(2 * MiB + 5));
        const s = await startServer({ root: tree.root, engine, fastPath, statCacheMs: 60_000 });
        try {
          let etag = '';
          // Twice: `auto` sends a version by sendfile once it went out whole.
          for (let i = 0; i < 2; i++) {
            const res = await fetchBytes(s.url + name);
            expect(sha256(res.body)).toBe(sha256(before));
            etag = String(res.headers['etag']);
          }
          const after = randomBytes(before.length);
          const file = path.join(tree.root, name);
          fs.writeFileSync(`${file}.next`, after);
          fs.renameSync(`${file}.next`, file);
          // Its stat is cached for a minute. The file is found changed before anything of the
          // response went out (node:http's path opens and checks it before its headers; on the
          // fast path the FileSender does), and the same request is answered again from a fresh
          // lookup. Never the new bytes as the old version. On the fast path the memory cache
          // (auto without a ring) still holds the old version and sends it whole.
          const fromMemory = fastPath && engine === 'auto' && !URING;
          const consistent = (res: { headers: Record<string, unknown>; body: Buffer }) =>
            res.headers['etag'] === etag ? sha256(res.body) === sha256(before) : sha256(res.body) === sha256(after);
          const answered = s.fileServer.stats().http.fastPath.responses;
          const bodies = { ...s.fileServer.stats().static.responses };
          const racing = await fetchBytes(s.url + name).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
          const label = `${engine} fastPath=${fastPath}`;
          if (fromMemory) {
            expect(racing instanceof Error ? 'failed' : consistent(racing), label).toBe(true);
          } else {
            if (racing instanceof Error) throw racing;
            expect(racing.status, label).toBe(200);
            expect(sha256(racing.body), label).toBe(sha256(after));
            expect(racing.headers['etag'], label).not.toBe(etag);
            expect(s.fileServer.stats().http.fastPath.responses - answered, 'one request, one response').toBe(fastPath ? 1 : 0);
            if (!fastPath) {
              // Counted once the body step settles, which may come after the client has the bytes.
              const counted = () => s.fileServer.stats().static.responses;
              await waitFor(() => counted().fileSender > bodies.fileSender, 5000, 'the body counted');
              expect({ sent: counted().fileSender - bodies.fileSender, aborted: counted().aborted - bodies.aborted }, label).toEqual({ sent: 1, aborted: 0 });
            }
          }
          // A send that found the change made the next request look the file up again.
          const next = await fetchBytes(s.url + name);
          expect(next.status).toBe(200);
          expect(consistent(next), label).toBe(true);
          if (!fromMemory) expect(next.headers['etag'], label).not.toBe(etag);
          await waitFor(() => serverQuiet(s), 10_000, 'quiet server');
        } finally {
          await s.close();
        }
      }
    }
  });

  it('keeps body memory bounded: in-flight bytes never above maxInFlightBytes under 16 concurrent downloads', async () => {
    const limit = 256 * KiB;
    const s = await startServer({ root: tree.root, engine: 'copy', maxInFlightBytes: limit, cacheBytes: 0 });
    const agent = new Agent({ connections: 16 });
    let peak = 0;
    let waited = 0;
    const sampler = setInterval(() => {
      const f = s.fileServer.stats().files;
      peak = Math.max(peak, f.inFlightBytes);
      waited = Math.max(waited, f.waitingSends);
    }, 1);
    try {
      const results = await Promise.all(Array.from({ length: 16 }, () => fetchBytes(s.url + 'large.bin', {}, agent)));
      for (const r of results) expect(sha256(r.body)).toBe(sha256(tree.files['large.bin']!));
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThanOrEqual(limit);
      expect(s.fileServer.stats().files.maxInFlightBytes).toBe(limit);
      await waitFor(() => serverQuiet(s), 10_000, 'quiet server');
      // The 16 responses had to wait for each other's buffers: backpressure, not buffering.
      expect(waited).toBeGreaterThan(0);
    } finally {
      clearInterval(sampler);
      await agent.close();
      await s.close();
    }
  });
});
