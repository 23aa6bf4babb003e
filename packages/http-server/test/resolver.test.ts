// The Resolver's bookkeeping of what it holds for cached versions (inline bytes, open files),
// on a real tree, through cache churn that races a reload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveStaticOptions } from '../src/static/options.js';
import { Resolver } from '../src/static/resolver.js';
import { randomBytes } from './helpers.js';

/** The resolver's bound on cached paths (MAX_ENTRIES in resolver.ts). */
const MAX_ENTRIES = 16_384;

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-resolver-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('Resolver', () => {
  it('a version evicted (cache full of other paths) while its path reloads is counted and held again when the reload keeps it', async () => {
    const root = fs.realpathSync(dir);
    fs.writeFileSync(path.join(root, 'p.bin'), randomBytes(48 * 1024));
    const resolver = new Resolver(resolveStaticOptions(root, { statCacheMs: 100 }), { cacheControl: 'public, max-age=0', common: [] });
    const first = await resolver.resolve('/p.bin');
    expect(first.kind).toBe('file');
    expect(resolver.inlineCacheBytes).toBe(48 * 1024);
    // The oldest entry is /p.bin; then the cache fills with paths that do not exist.
    for (let i = 1; i < MAX_ENTRIES; i += 512) {
      await Promise.all(Array.from({ length: Math.min(512, MAX_ENTRIES - i) }, (_, k) => resolver.resolve(`/missing-${i + k}`)));
    }
    expect(resolver.size).toBe(MAX_ENTRIES);
    await new Promise((r) => setTimeout(r, 150)); // /p.bin is stale: the next request reloads it
    const reload = resolver.resolve('/p.bin');
    // A new path, resolved (one realpath) while the reload still looks for siblings: it evicts /p.bin.
    await resolver.resolve('/missing-new');
    expect(resolver.cached('/p.bin', 0)).toBeUndefined();
    const again = await reload;
    expect(again.kind === 'file' && again.identity.inline?.length).toBe(48 * 1024);
    expect(resolver.cached('/p.bin', 0)).toBe(again);
    // Its inline bytes are held, so they are counted; and it can be sent from an open file again.
    expect(resolver.inlineCacheBytes).toBe(48 * 1024);
    const fd = again.kind === 'file' ? resolver.inlineFileFd(again.identity) : -1;
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(resolver.openInlineFiles).toBe(1);
    resolver.clear();
    expect(resolver.inlineCacheBytes).toBe(0);
    expect(resolver.openInlineFiles).toBe(0);
    expect(() => fs.fstatSync(fd)).toThrow(/EBADF/);
  });
});
