// File trees served during the runs: a root with bodies of known content, and, next to it, an
// "outside" directory holding a marker that must never appear in a response.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomFillSync } from 'node:crypto';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** Appears only in files outside the served root: finding it in a response is a traversal. */
export const OUTSIDE_MARKER = 'ZCSEND-OUTSIDE-ROOT-4f1d2c';

export interface ServedFile {
  /** URL path under the root, e.g. '/bodies/b-1048576-0.bin'. */
  urlPath: string;
  /** Path relative to the root. */
  rel: string;
  data: Buffer;
}

export interface FixtureTree {
  dir: string;
  root: string;
  outside: string;
  files: ServedFile[];
  /** Files by relative path. */
  byRel: Map<string, ServedFile>;
  cleanup(): void;
}

function randomContent(n: number): Buffer {
  const b = Buffer.allocUnsafeSlow(n);
  for (let off = 0; off < n; off += 1 << 30) randomFillSync(b, off, Math.min(1 << 30, n - off));
  return b;
}

function makeDirs(prefix: string): { dir: string; root: string; outside: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const root = path.join(dir, 'root');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  // Outside the root: secrets, reachable only by escaping it.
  fs.writeFileSync(path.join(outside, 'secret.txt'), `${OUTSIDE_MARKER}\n`);
  fs.writeFileSync(path.join(dir, 'secret.txt'), `${OUTSIDE_MARKER} parent\n`);
  return { dir, root, outside };
}

function tree(dir: string, root: string, outside: string, files: ServedFile[]): FixtureTree {
  return {
    dir,
    root,
    outside,
    files,
    byRel: new Map(files.map((f) => [f.rel, f])),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

function writeServed(root: string, rel: string, data: Buffer): ServedFile {
  const full = path.join(root, rel);
  fs.mkdirSync(path.dirname(full), { recursive: true });
  fs.writeFileSync(full, data);
  return { urlPath: '/' + rel.split(path.sep).map(encodeURIComponent).join('/'), rel, data };
}

/** Bodies of the given sizes (`copies` files per size), random content, under /bodies/. */
export function bodyTree(sizes: readonly number[], copies = 1): FixtureTree {
  const { dir, root, outside } = makeDirs('zcsend-soak-');
  const files: ServedFile[] = [];
  for (const size of sizes) {
    for (let c = 0; c < copies; c++) files.push(writeServed(root, path.join('bodies', `b-${size}-${c}.bin`), randomContent(size)));
  }
  return tree(dir, root, outside, files);
}

/**
 * A root that tempts a traversal: dotfiles, symlinks pointing outside (file, directory, /etc),
 * a symlink that stays inside, odd but legal names, an index.
 */
export function hostileTree(): FixtureTree {
  const { dir, root, outside } = makeDirs('zcsend-hostile-');
  const files: ServedFile[] = [];
  const add = (rel: string, data: Buffer | string) => files.push(writeServed(root, rel, typeof data === 'string' ? Buffer.from(data) : data));
  add('index.html', '<!doctype html><title>root</title>\n');
  add('small.txt', 'small text\n'.repeat(40));
  add('data.json', '{"ok":true}\n');
  add('medium.bin', randomContent(300 * KiB));
  add('large.bin', randomContent(3 * MiB + 17));
  add('sub/index.html', '<p>sub</p>\n');
  add('sub/page.txt', 'sub page\n');
  add('sub/deeper/file.txt', 'deep\n');
  add('odd/foo..bar', 'dots inside a name\n');
  add('odd/sp ace.txt', 'space\n');
  add('odd/h\u00e9llo.txt', 'unicode\n');
  add('style.css', 'body{}\n'.repeat(30));
  add('style.css.gz', randomContent(100));
  // Refused by default (dotfiles: deny): they must never be served either.
  fs.writeFileSync(path.join(root, '.env'), `${OUTSIDE_MARKER} dotfile\n`);
  fs.mkdirSync(path.join(root, '.git'));
  fs.writeFileSync(path.join(root, '.git', 'config'), `${OUTSIDE_MARKER} git\n`);
  fs.writeFileSync(path.join(root, 'sub', '.htpasswd'), `${OUTSIDE_MARKER} htpasswd\n`);
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'link-out.txt'));
  fs.symlinkSync(outside, path.join(root, 'dir-out'));
  fs.symlinkSync('/etc', path.join(root, 'etc'));
  fs.symlinkSync('../../secret.txt', path.join(root, 'sub', 'up.txt'));
  fs.symlinkSync(path.join(root, 'medium.bin'), path.join(root, 'link-in.bin'));
  return tree(dir, root, outside, files);
}
