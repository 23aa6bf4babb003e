// io_uring blocked the way containers block it: a seccomp filter makes io_uring_setup (and
// io_uring_enter/register) fail with EPERM, as Docker's default profile does. The servers must
// start, say why, and serve correctly on the copy backend; with io_uring required they must refuse.
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyTree, KiB, MiB, type FixtureTree } from '../src/lib/fixtures.js';
import { getJson, getOnce, modeEnv, startServer, STATS_PATH, ZCSERVE_BIN } from '../src/lib/server-process.js';
import { buildLauncher } from '../src/seccomp/launcher.js';
import { MODE } from './helpers.js';

const built = buildLauncher();
if (!built.path) console.warn(`[zcsend] seccomp launcher unavailable: ${built.reason}`);
const launcher = built.path;
const coreEntry = createRequire(import.meta.url).resolve('@zcsend/core');
const SIZES = [3 * KiB, 300 * KiB + 1, 5 * MiB + 7];

/** Runs a snippet in a fresh node under the filter and returns its JSON output. */
function underFilter<T>(code: string, flags: string[] = []): T {
  const out = execFileSync(launcher!, [...flags, '--', process.execPath, '--input-type=module', '-e', `import * as core from ${JSON.stringify(coreEntry)};\n${code}`], {
    env: modeEnv('auto'),
    encoding: 'utf8',
    timeout: 30_000,
  });
  return JSON.parse(out) as T;
}

let tree: FixtureTree;
beforeAll(() => {
  tree = bodyTree(SIZES);
});
afterAll(() => tree?.cleanup());

describe.runIf(launcher !== null)('io_uring blocked by seccomp', () => {
  it('the filter turns io_uring_setup into EPERM, and the probe says so', () => {
    const probe = underFilter<{ available: boolean; reason: string }>('console.log(JSON.stringify(core.probe()));');
    expect(probe.available).toBe(false);
    expect(probe.reason).toMatch(/EPERM/);
    expect(probe.reason).toMatch(/seccomp/);
    const noSys = underFilter<{ reason: string }>('console.log(JSON.stringify(core.probe()));', ['--errno=ENOSYS']);
    expect(noSys.reason).toMatch(/ENOSYS/);
  });

  it('a Sender falls back to the copy backend with the reason, and refuses when io_uring is required', () => {
    const result = underFilter<{ backend: string; reason: string; required: string }>(
      `const s = new core.Sender();
       let required = 'constructed';
       try { new core.Sender({ backend: 'io_uring' }); } catch (e) { required = e.code; }
       console.log(JSON.stringify({ backend: s.backend, reason: s.fallbackReason, required }));`,
    );
    expect(result).toMatchObject({ backend: 'copy', required: 'ZCSEND_ERR_URING_UNAVAILABLE' });
    expect(result.reason).toMatch(/EPERM/);
  });

  it.each(['zcserve', 'fastify'] as const)('%s starts under the filter, logs why, and serves byte-exact on the copy backend', async (kind) => {
    const server = await startServer({ kind, mode: 'auto', root: tree.root, timeoutMs: 10_000, launcher: [launcher!, '--'] });
    try {
      expect(server.backend).toMatch(/^copy \(.*EPERM/);
      for (const file of tree.files) {
        const url = `${server.url}${kind === 'fastify' ? '/static' : ''}${file.urlPath}`;
        const res = await getOnce(url);
        expect(res.status, url).toBe(200);
        expect(res.body.equals(file.data), url).toBe(true);
      }
      if (kind === 'fastify') {
        const name = path.basename(tree.files[2]!.rel);
        const res = await getOnce(`${server.url}/bodies/${name}`);
        expect(res.body.equals(tree.files[2]!.data)).toBe(true);
      }
      const stats = await getJson<{ backend: string; fallbackReason: string; sender: { backend: string; opsSubmitted: number } }>(`${server.url}${STATS_PATH}`);
      expect(stats).toMatchObject({ backend: 'copy', sender: { backend: 'copy', opsSubmitted: 0 } });
      expect(stats.fallbackReason).toMatch(/EPERM/);
    } finally {
      const exit = await server.stop();
      expect(exit.code).toBe(0);
    }
  });

  it('zcserve refuses to start when io_uring is required and blocked', () => {
    const run = spawnSync(launcher!, ['--', process.execPath, ZCSERVE_BIN, tree.root, '--port', '0'], {
      env: { ...modeEnv('auto'), ZCSEND_REQUIRE_URING: '1' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/io_uring/);
    expect(run.stderr).toMatch(/EPERM/);
  });

  it.runIf(MODE === 'uring')('without the filter the same server uses io_uring (the filter is what changes it)', async () => {
    const server = await startServer({ kind: 'zcserve', mode: 'auto', root: tree.root, timeoutMs: 10_000 });
    try {
      expect(server.backend).toMatch(/^io_uring/);
    } finally {
      await server.stop();
    }
  });
});
