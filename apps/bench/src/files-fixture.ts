// The files every static server serves: one per size, deterministic bytes, world-readable (nginx's
// worker drops to `nobody` when started as root).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { patternBody, sha256 } from './body.js';
import { sizeTag } from './units.js';

export interface FixtureFile {
  size: number;
  name: string;
  sha256: string;
}

export function fileName(size: number): string {
  return `f-${sizeTag(size)}.bin`;
}

export function writeFixture(root: string, sizes: readonly number[]): FixtureFile[] {
  // The scratch directory above is made world-traversable by the CLI; this one and its files are
  // made readable here whatever the umask.
  mkdirSync(root, { recursive: true });
  chmodSync(root, 0o755);
  return sizes.map((size) => {
    const body = patternBody(size);
    const name = fileName(size);
    writeFileSync(path.join(root, name), body, { mode: 0o644 });
    return { size, name, sha256: sha256(body) };
  });
}
