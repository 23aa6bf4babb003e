// The path cache (realpath/stat results, statCacheMs) and the small files it holds in memory:
// what changes on disk between two requests must show once the entry is revalidated (at once with
// statCacheMs 0), byte for byte, never a mix of versions, never a file outside the root, and the
// memory of the replaced version must be given back.
import * as fs from 'node:fs';
import fsModule from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etagOf } from '../src/static/representation.js';
import { KiB, MODE, OUTSIDE_SECRET, makeTree, randomBytes, rawGet, serverQuiet, sha256, startServer, waitFor, type RawResponse, type Running, type Tree } from './helpers.js';

let tree: Tree;

beforeAll(() => {
  tree = makeTree();
});

afterAll(() => {
  tree?.cleanup();
});

/** Both ends of the cache: revalidated on every request, and reused for a short window. */
const WINDOWS = [0, 300];

/** Moves a new file over `rel` with rename(2): a new inode at the same name, as deploy tools do. */
function renameOver(rel: string, data: Buffer, mtime?: Date): void {
  const full = path.join(tree.root, rel);
  const tmp = `${full}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  if (mtime) fs.utimesSync(tmp, mtime, mtime);
  fs.renameSync(tmp, full);
}

/** Puts a symlink to `target` in place of `rel` (a file or a directory) atomically. */
function symlinkOver(rel: string, target: string): void {
  const full = path.join(tree.root, rel);
  const tmp = `${full}.link-${process.pid}`;
  fs.symlinkSync(target, tmp);
  fs.renameSync(tmp, full);
}

/**
 * Asks for `target` until `done(response)` holds; every response before that must satisfy `before`.
 * With statCacheMs 0 the first response must already be the new one.
 */
async function untilChanged(s: Running, statCacheMs: number, target: string, before: (r: RawResponse) => void, done: (r: RawResponse) => boolean): Promise<RawResponse> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const res = await rawGet(s.port, target);
    expect(res.body.includes(OUTSIDE_SECRET)).toBe(false);
    if (done(res)) return res;
    if (statCacheMs === 0) throw new Error(`statCacheMs 0 served the previous version of ${target}: ${res.status}`);
    before(res);
    if (Date.now() > deadline) throw new Error(`${target} never changed`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe(`path cache and in-memory small files (${MODE})`, () => {
  it('a small file rewritten in place with the same size is served fresh, byte-exact, and only one version stays in memory', async () => {
    for (const statCacheMs of WINDOWS) {
      const name = `inline-rewrite-${statCacheMs}.bin`;
      const first = tree.write(name, randomBytes(4 * KiB));
      const s = await startServer({ root: tree.root, statCacheMs });
      try {
        const a = await rawGet(s.port, `/${name}`);
        expect(a.status).toBe(200);
        expect(sha256(a.body)).toBe(sha256(first));
        expect(s.fileServer.stats().static.inlineBytes).toBe(first.length);

        // Same size and inode: only the mtime (and ctime) tell the versions apart.
        const second = randomBytes(4 * KiB);
        fs.writeFileSync(path.join(tree.root, name), second);
        const stamp = new Date(Date.now() + 5_000);
        fs.utimesSync(path.join(tree.root, name), stamp, stamp);
        const b = await untilChanged(
          s,
          statCacheMs,
          `/${name}`,
          (r) => expect(sha256(r.body)).toBe(sha256(first)),
          (r) => sha256(r.body) === sha256(second),
        );
        expect(b.status).toBe(200);
        expect(b.headers['etag']).not.toBe(a.headers['etag']);
        expect(b.headers['last-modified']).toBe(stamp.toUTCString());
        const range = await rawGet(s.port, `/${name}`, 'Range: bytes=100-199\r\n');
        expect(range.status).toBe(206);
        expect(sha256(range.body)).toBe(sha256(second.subarray(100, 200)));
        expect(s.fileServer.stats().static.inlineBytes).toBe(second.length);
      } finally {
        await s.close();
      }
    }
  });

  it('a small file renamed over by another of the same size and mtime is told apart (inode, ctime)', async () => {
    const name = 'inline-rename.bin';
    const mtime = new Date(Date.now() - 60_000);
    const first = randomBytes(16 * KiB);
    renameOver(name, first, mtime);
    const s = await startServer({ root: tree.root, statCacheMs: 0 });
    try {
      const a = await rawGet(s.port, `/${name}`);
      expect(sha256(a.body)).toBe(sha256(first));
      const second = randomBytes(16 * KiB);
      renameOver(name, second, mtime);
      const b = await rawGet(s.port, `/${name}`);
      expect(b.status).toBe(200);
      expect(sha256(b.body)).toBe(sha256(second));
      expect(b.headers['last-modified']).toBe(a.headers['last-modified']);
      expect(b.headers['etag']).not.toBe(a.headers['etag']);
      // If-None-Match with the old ETag must not get a 304 for the new file.
      const c = await rawGet(s.port, `/${name}`, `If-None-Match: ${a.headers['etag']}\r\n`);
      expect(c.status).toBe(200);
      expect(sha256(c.body)).toBe(sha256(second));
    } finally {
      await s.close();
    }
  });

  it('a small file renamed over between its stat and its read (same size) is never held or sent under the old stat', async () => {
    const name = 'inline-race.bin';
    const full = path.join(tree.root, name);
    const first = randomBytes(8 * KiB);
    renameOver(name, first, new Date(Date.now() - 120_000));
    const second = randomBytes(first.length);
    // The deploy lands right after the server's stat of the path returned (the old version's).
    const realStat = fsModule.stat;
    let raced = false;
    fsModule.stat = ((p: fs.PathLike, ...rest: unknown[]) => {
      const cb = rest[rest.length - 1] as (err: NodeJS.ErrnoException | null, st: fs.Stats) => void;
      realStat(p, (err, st) => {
        if (!raced && String(p) === full) {
          raced = true;
          renameOver(name, second, new Date(Date.now() - 60_000));
        }
        cb(err, st);
      });
    }) as typeof fs.stat;
    syncBuiltinESMExports();
    const s = await startServer({ root: tree.root, statCacheMs: 60_000 });
    try {
      const res = await rawGet(s.port, `/${name}`);
      expect(raced).toBe(true);
      expect(res.status).toBe(200);
      expect(sha256(res.body)).toBe(sha256(second));
      // Validators of the version sent: the new file's.
      const now = fs.statSync(full);
      expect(res.headers['etag']).toBe(etagOf(now));
      expect(res.headers['last-modified']).toBe(now.mtime.toUTCString());
      const again = await rawGet(s.port, `/${name}`);
      expect({ etag: again.headers['etag'], body: sha256(again.body) }).toEqual({ etag: etagOf(now), body: sha256(second) });
    } finally {
      fsModule.stat = realStat;
      syncBuiltinESMExports();
      await s.close();
    }
  });

  it('a served small file replaced by a symlink to a file outside the root is refused, never leaked', async () => {
    for (const statCacheMs of WINDOWS) {
      const name = `inline-swap-${statCacheMs}.txt`;
      const first = tree.write(name, randomBytes(2 * KiB));
      const s = await startServer({ root: tree.root, statCacheMs });
      try {
        const a = await rawGet(s.port, `/${name}`);
        expect(a.status).toBe(200);
        expect(sha256(a.body)).toBe(sha256(first));

        symlinkOver(name, path.join(tree.outside, 'secret.txt'));
        const b = await untilChanged(
          s,
          statCacheMs,
          `/${name}`,
          (r) => {
            expect(r.status).toBe(200);
            expect(sha256(r.body)).toBe(sha256(first));
          },
          (r) => r.status !== 200,
        );
        expect(b.status).toBe(403);
        // Refused from then on, whatever the cache window; the old bytes are no longer held.
        expect((await rawGet(s.port, `/${name}`)).status).toBe(403);
        expect(s.fileServer.stats().static.inlineBytes).toBe(0);
      } finally {
        await s.close();
      }
    }
  });

  it('a directory on the path replaced by a symlink leading outside the root is refused', async () => {
    for (const statCacheMs of WINDOWS) {
      const dir = `swapdir-${statCacheMs}`;
      const first = tree.write(`${dir}/secret.txt`, randomBytes(1 * KiB));
      const s = await startServer({ root: tree.root, statCacheMs });
      try {
        const a = await rawGet(s.port, `/${dir}/secret.txt`);
        expect(sha256(a.body)).toBe(sha256(first));

        // outside/secret.txt has the same name as the file served so far.
        fs.renameSync(path.join(tree.root, dir), path.join(tree.dir, `${dir}-moved`));
        symlinkOver(dir, tree.outside);
        const b = await untilChanged(
          s,
          statCacheMs,
          `/${dir}/secret.txt`,
          (r) => expect(sha256(r.body)).toBe(sha256(first)),
          (r) => r.status !== 200,
        );
        expect(b.status).toBe(403);
      } finally {
        await s.close();
      }
    }
  });

  it('a symlink inside the root repointed to a file outside it is refused', async () => {
    const name = 'repointed-link.txt';
    tree.write('link-target.txt', randomBytes(3 * KiB));
    fs.symlinkSync(path.join(tree.root, 'link-target.txt'), path.join(tree.root, name));
    const s = await startServer({ root: tree.root, statCacheMs: 0 });
    try {
      const a = await rawGet(s.port, `/${name}`);
      expect(a.status).toBe(200);
      expect(sha256(a.body)).toBe(sha256(tree.files['link-target.txt']!));
      symlinkOver(name, path.join(tree.outside, 'secret.txt'));
      const b = await rawGet(s.port, `/${name}`);
      expect(b.status).toBe(403);
      expect(b.body.includes(OUTSIDE_SECRET)).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('a deleted small file answers 404 and gives its memory back; a new one at the same path is served', async () => {
    for (const statCacheMs of WINDOWS) {
      const name = `inline-delete-${statCacheMs}.bin`;
      const first = tree.write(name, randomBytes(8 * KiB));
      const s = await startServer({ root: tree.root, statCacheMs });
      try {
        expect(sha256((await rawGet(s.port, `/${name}`)).body)).toBe(sha256(first));
        fs.rmSync(path.join(tree.root, name));
        await untilChanged(
          s,
          statCacheMs,
          `/${name}`,
          (r) => expect(sha256(r.body)).toBe(sha256(first)),
          (r) => r.status === 404,
        );
        expect(s.fileServer.stats().static.inlineBytes).toBe(0);

        const again = tree.write(name, randomBytes(5 * KiB));
        const b = await untilChanged(s, statCacheMs, `/${name}`, (r) => expect(r.status).toBe(404), (r) => r.status === 200);
        expect(sha256(b.body)).toBe(sha256(again));
        await waitFor(() => serverQuiet(s), 10_000, 'quiet server');
      } finally {
        await s.close();
      }
    }
  });
});
