// What the harness needs from the system: wrk and nginx from Debian (installed with apt-get when
// missing and allowed), and the C reference program compiled at bench time against liburing.a.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runToEnd } from './spawn.js';

export const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    const candidate = path.join(dir || '.', name);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

export interface SystemTools {
  wrk: string | null;
  nginx: string | null;
  /** Why a tool is missing, keyed by tool name. */
  missing: Record<string, string>;
  log: string[];
}

/**
 * Finds wrk and nginx; with `install` (and root) installs the missing ones with apt-get.
 * Bounded in time; never throws: what is still missing is reported and its competitors skipped.
 */
export async function ensureSystemTools(install: boolean): Promise<SystemTools> {
  const tools: SystemTools = { wrk: which('wrk'), nginx: which('nginx'), missing: {}, log: [] };
  const wanted = [tools.wrk ? null : 'wrk', tools.nginx ? null : 'nginx'].filter((x): x is string => x !== null);
  if (wanted.length > 0 && install) {
    if (process.getuid?.() !== 0) {
      tools.log.push(`not root: cannot apt-get install ${wanted.join(' ')}`);
    } else if (!which('apt-get')) {
      tools.log.push(`no apt-get: cannot install ${wanted.join(' ')}`);
    } else {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      tools.log.push(`installing ${wanted.join(' ')} with apt-get`);
      const update = await runToEnd('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'update', '-qq'], 180_000, env);
      if (!update.ok) tools.log.push(`apt-get update failed: ${update.output.trim().split('\n').slice(-2).join(' ')}`);
      const result = await runToEnd('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '-qq', '--no-install-recommends', ...wanted], 300_000, env);
      if (!result.ok) tools.log.push(`apt-get install failed: ${result.output.trim().split('\n').slice(-3).join(' ')}`);
      tools.wrk = which('wrk');
      tools.nginx = which('nginx');
    }
  }
  const why = install ? 'not installed and apt-get could not install it' : 'not installed (run without --no-install to apt-get it)';
  if (!tools.wrk) tools.missing.wrk = why;
  if (!tools.nginx) tools.missing.nginx = why;
  return tools;
}

export function nginxVersion(binary: string): string {
  const out = spawnSync(binary, ['-v'], { encoding: 'utf8' });
  return /nginx\/(\S+)/.exec(`${out.stdout}${out.stderr}`)?.[1] ?? 'unknown';
}

export interface CProgram {
  path: string | null;
  reason: string | null;
  compiler: string;
}

/** gcc -O2 c/zcbench.c + liburing.a (static), into build/ (ignored by git); rebuilt when the source is newer. */
export async function compileC(): Promise<CProgram> {
  const source = path.join(PACKAGE_DIR, 'c', 'zcbench.c');
  const out = path.join(PACKAGE_DIR, 'build', 'zcbench');
  const gcc = which('gcc') ?? which('cc');
  if (!gcc) return { path: null, reason: 'no C compiler (gcc) found', compiler: 'none' };
  const version = spawnSync(gcc, ['-dumpfullversion'], { encoding: 'utf8' }).stdout.trim();
  const compiler = `${path.basename(gcc)} ${version}`;
  const archive = spawnSync(gcc, ['-print-file-name=liburing.a'], { encoding: 'utf8' }).stdout.trim();
  if (!archive || !existsSync(archive)) return { path: null, reason: 'liburing.a not found (apt-get install liburing-dev)', compiler };
  if (existsSync(out) && statSync(out).mtimeMs > statSync(source).mtimeMs) return { path: out, reason: null, compiler };
  mkdirSync(path.dirname(out), { recursive: true });
  // Build beside the target and rename: concurrent harnesses (parallel test files) never run a half-written binary.
  const temp = `${out}.${process.pid}.tmp`;
  const result = await runToEnd(gcc, ['-O2', '-Wall', '-o', temp, source, archive], 60_000);
  if (!result.ok) {
    rmSync(temp, { force: true });
    return { path: null, reason: `compile failed: ${result.output.trim().split('\n').slice(-3).join(' ')}`, compiler };
  }
  renameSync(temp, out);
  return { path: out, reason: null, compiler };
}
