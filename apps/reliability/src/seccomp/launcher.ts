// Builds the no-uring launcher (src/seccomp/no-uring.c) with gcc into a per-source cache dir.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PACKAGE_DIR } from '../lib/server-process.js';

export const LAUNCHER_SOURCE = path.join(PACKAGE_DIR, 'src', 'seccomp', 'no-uring.c');

export type LauncherBuild = { path: string; reason: null } | { path: null; reason: string };

/** Compiles the launcher once per source version; says why when it cannot (no gcc, not Linux). */
export function buildLauncher(cc = process.env.CC ?? 'gcc'): LauncherBuild {
  if (process.platform !== 'linux') return { path: null, reason: `seccomp filters are Linux-only (platform ${process.platform})` };
  const source = fs.readFileSync(LAUNCHER_SOURCE);
  const digest = createHash('sha256').update(source).update(process.arch).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), `zcsend-no-uring-${digest}`);
  const binary = path.join(dir, 'no-uring');
  if (fs.existsSync(binary)) return { path: binary, reason: null };
  const probe = spawnSync(cc, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return { path: null, reason: `C compiler '${cc}' not found: install gcc (or set CC)` };
  fs.mkdirSync(dir, { recursive: true });
  const partial = `${binary}.${process.pid}`;
  try {
    execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-o', partial, LAUNCHER_SOURCE], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    return { path: null, reason: `compiling ${LAUNCHER_SOURCE} failed: ${e.stderr?.toString() || e.message}` };
  }
  fs.renameSync(partial, binary); // atomic: concurrent builders never run a half-written file
  return { path: binary, reason: null };
}
