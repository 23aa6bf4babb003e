// At least 100 traversal attempts against zcserve (its own process, this run's mode): each one
// refused with 400, 403 or 404, nothing from outside the root in the answer, the server unharmed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange } from '../src/fuzz/check.js';
import { hostileTree, OUTSIDE_MARKER, type FixtureTree } from '../src/lib/fixtures.js';
import { fdCount } from '../src/lib/proc.js';
import { getOnce, startServer, type RunningServer } from '../src/lib/server-process.js';
import { traversalCorpus } from '../src/traversal/corpus.js';
import { MODE } from './helpers.js';

const CORPUS = traversalCorpus();
let tree: FixtureTree;
let server: RunningServer;

beforeAll(async () => {
  tree = hostileTree();
  server = await startServer({ kind: 'zcserve', mode: MODE, root: tree.root, timeoutMs: 5000 });
});

afterAll(async () => {
  try {
    const exit = await server?.stop();
    expect(exit?.code).toBe(0);
  } finally {
    tree?.cleanup();
  }
});

function leaks(text: string): string | null {
  if (text.includes(OUTSIDE_MARKER)) return 'the outside-root marker';
  if (/root:[x*]?:0:0/.test(text)) return '/etc/passwd content';
  if (text.includes(tree.dir)) return "the server's directory";
  return null;
}

async function get(target: string) {
  const bytes = Buffer.from(`GET ${target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 'utf8');
  return exchange(server.port, { iteration: 0, kind: 'traversal', bytes, heads: [false], halfClose: false }, 10_000);
}

describe(`traversal corpus against zcserve (${MODE})`, () => {
  it('has at least 100 distinct cases', () => {
    expect(new Set(CORPUS).size).toBe(CORPUS.length);
    expect(CORPUS.length).toBeGreaterThanOrEqual(100);
  });

  it('the tree really holds what the corpus aims at (the test could fail)', async () => {
    // Reached by the server only if it escaped: prove the markers are there to be found.
    const { readFileSync, realpathSync } = await import('node:fs');
    expect(readFileSync(`${tree.root}/link-out.txt`, 'utf8')).toContain(OUTSIDE_MARKER);
    expect(readFileSync(`${tree.root}/sub/up.txt`, 'utf8')).toContain(OUTSIDE_MARKER);
    expect(realpathSync(`${tree.root}/etc`)).toBe('/etc');
    expect(readFileSync(`${tree.root}/.env`, 'utf8')).toContain(OUTSIDE_MARKER);
  });

  it('refuses every case with 400, 403 or 404 and reveals nothing', async () => {
    const wrong: string[] = [];
    for (const target of CORPUS) {
      const result = await get(target);
      const res = result.responses[0];
      if (result.error || !res) {
        wrong.push(`${target} -> ${result.error ?? 'no response'}`);
        continue;
      }
      const leak = leaks(res.body.toString('latin1') + JSON.stringify(res.head.rawHeaders));
      if (![400, 403, 404].includes(res.head.status) || leak) wrong.push(`${target} -> ${res.head.status}${leak ? `, reveals ${leak}` : ''}`);
    }
    expect(wrong).toEqual([]);
  });

  it('refuses them all on one keep-alive connection and still answers the next request', async () => {
    const pipelinable = CORPUS.filter((t) => t.startsWith('/') && !/[\s\u0000-\u001f\u007f]/.test(t));
    const text = pipelinable.map((t) => `GET ${t} HTTP/1.1\r\nHost: t\r\n\r\n`).join('') + 'GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';
    const heads = new Array<boolean>(pipelinable.length + 1).fill(false);
    const result = await exchange(server.port, { iteration: 0, kind: 'pipeline', bytes: Buffer.from(text, 'utf8'), heads, halfClose: false }, 30_000);
    expect(result.error).toBeNull();
    const refusals = result.responses.slice(0, pipelinable.length);
    for (const res of refusals) {
      expect([400, 403, 404]).toContain(res.head.status);
      expect(leaks(res.body.toString('latin1'))).toBeNull();
    }
    if (result.responses.length === heads.length) {
      const last = result.responses.at(-1)!;
      expect(last.head.status).toBe(200);
      expect(last.body.equals(tree.byRel.get('small.txt')!.data)).toBe(true);
    }
    // A refusal that closes the connection ends the pipeline there: send the rest again.
    let answered = refusals.length;
    while (answered < pipelinable.length) {
      const rest = pipelinable.slice(answered);
      const again = await exchange(
        server.port,
        { iteration: 0, kind: 'pipeline', bytes: Buffer.from(rest.map((t) => `GET ${t} HTTP/1.1\r\nHost: t\r\n\r\n`).join(''), 'utf8'), heads: rest.map(() => false), halfClose: false },
        30_000,
      );
      expect(again.error).toBeNull();
      expect(again.responses.length).toBeGreaterThan(0);
      for (const res of again.responses) {
        expect([400, 403, 404]).toContain(res.head.status);
        expect(leaks(res.body.toString('latin1'))).toBeNull();
      }
      answered += again.responses.length;
    }
    const ok = await getOnce(`${server.url}/small.txt`);
    expect(ok.status).toBe(200);
    expect(ok.body.equals(tree.byRel.get('small.txt')!.data)).toBe(true);
    expect(fdCount(server.pid)).toBeGreaterThan(0);
  });

  it('still serves legitimate names that look odd, and a symlink that stays inside', async () => {
    for (const [target, rel] of [
      ['/odd/foo..bar', 'odd/foo..bar'],
      ['/odd/sp%20ace.txt', 'odd/sp ace.txt'],
      ['/odd/h%C3%A9llo.txt', 'odd/h\u00e9llo.txt'],
      ['/sub/deeper/file.txt', 'sub/deeper/file.txt'],
    ] as const) {
      const res = await getOnce(`${server.url}${target}`);
      expect(res.status, target).toBe(200);
      expect(res.body.equals(tree.byRel.get(rel)!.data), target).toBe(true);
    }
    const inside = await getOnce(`${server.url}/link-in.bin`);
    expect(inside.status).toBe(200);
    expect(inside.body.equals(tree.byRel.get('medium.bin')!.data)).toBe(true);
  });
});
