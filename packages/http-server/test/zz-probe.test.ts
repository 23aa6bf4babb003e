import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MODE, makeTree, randomBytes, rawGet, sha256, startServer, type Running, type Tree } from './helpers.js';

let tree: Tree;
let fast: Running;
let plain: Running;
beforeAll(async () => {
  tree = makeTree();
  fast = await startServer({ root: tree.root, statCacheMs: 60_000 });
  plain = await startServer({ root: tree.root, statCacheMs: 60_000, fastPath: false });
});
afterAll(async () => {
  await fast?.close();
  await plain?.close();
  tree?.cleanup();
});

describe(`probe ${MODE}`, () => {
  it('in-place rewrite', async () => {
    const old = tree.write('inplace.bin', randomBytes(48 * 1024));
    const a1 = await rawGet(fast.port, '/inplace.bin');
    const b1 = await rawGet(plain.port, '/inplace.bin');
    expect(sha256(a1.body)).toBe(sha256(old));
    expect(sha256(b1.body)).toBe(sha256(old));
    // Rewritten in place (same inode), shorter.
    const next = randomBytes(40 * 1024);
    fs.writeFileSync(path.join(tree.root, 'inplace.bin'), next);
    const a2 = await rawGet(fast.port, '/inplace.bin');
    const b2 = await rawGet(plain.port, '/inplace.bin');
    console.log('fast', a2.status, a2.body.length, 'old?', sha256(a2.body) === sha256(old), 'prefix new?', a2.body.subarray(0, 40 * 1024).equals(next));
    console.log('plain', b2.status, b2.body.length, 'old?', sha256(b2.body) === sha256(old));
    expect(sha256(a2.body)).toBe(sha256(b2.body));
  });
});
