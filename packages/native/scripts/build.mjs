#!/usr/bin/env node
// Build the addon when this machine can, and never fail the build when it
// cannot: the reason goes to build/unavailable.txt (which the loader reports)
// and zcsend falls back to copying sends.
//
// Environment:
//   ZCSEND_LIBURING_INCLUDE  directory holding liburing.h (default: search)
//   ZCSEND_LIBURING_A        path of liburing.a (default: search)
//   ZCSEND_NATIVE_SANITIZE=1 build with -fsanitize=address,undefined
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(pkgDir, 'build');
const addonPath = path.join(buildDir, 'Release', 'zcsend_native.node');
const unavailablePath = path.join(buildDir, 'unavailable.txt');

function unavailable(reason, detail = '') {
  fs.mkdirSync(buildDir, { recursive: true });
  fs.rmSync(addonPath, { force: true });
  fs.writeFileSync(unavailablePath, `${reason}\n${detail ? `\n${detail}\n` : ''}`);
  console.warn(`zcsend native addon not built: ${reason}`);
  process.exit(0);
}

function firstExisting(candidates) {
  return candidates.find((candidate) => candidate && fs.existsSync(candidate)) ?? null;
}

function multiarchTriplets() {
  const byArch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf',
    ia32: 'i386-linux-gnu', riscv64: 'riscv64-linux-gnu', ppc64: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu' };
  return [byArch[process.arch]].filter(Boolean);
}

if (process.platform !== 'linux') {
  unavailable(`platform ${process.platform} is not Linux (io_uring is Linux-only)`);
}

// An explicit location is authoritative; otherwise search the usual places.
const includeDir = firstExisting((process.env.ZCSEND_LIBURING_INCLUDE
  ? [process.env.ZCSEND_LIBURING_INCLUDE]
  : ['/usr/include', '/usr/local/include']).map((dir) => path.join(dir, 'liburing.h')));
if (!includeDir) {
  unavailable('liburing-dev headers missing (install with: apt-get install liburing-dev)');
}
const header = fs.readFileSync(includeDir, 'utf8');
if (!header.includes('io_uring_prep_send_zc')) {
  unavailable(`liburing at ${includeDir} is older than 2.3 (no io_uring_prep_send_zc); install liburing-dev >= 2.3`);
}
const libDirs = [
  ...multiarchTriplets().flatMap((t) => [`/usr/lib/${t}`, `/usr/local/lib/${t}`, `/lib/${t}`]),
  '/usr/lib64', '/usr/lib', '/usr/local/lib64', '/usr/local/lib',
];
const liburingA = firstExisting(process.env.ZCSEND_LIBURING_A
  ? [process.env.ZCSEND_LIBURING_A]
  : libDirs.map((dir) => path.join(dir, 'liburing.a')));
if (!liburingA) {
  unavailable('liburing.a (static library) missing (install with: apt-get install liburing-dev)');
}

// Resolved from this package, so pnpm's symlinked node_modules is honoured.
let nodeGyp = path.join(pkgDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
try {
  nodeGyp = path.join(path.dirname(createRequire(import.meta.url).resolve('node-gyp/package.json')), 'bin', 'node-gyp.js');
} catch {
  // keep the conventional location; checked below
}
if (!fs.existsSync(nodeGyp)) unavailable('node-gyp is not installed (run pnpm install)');

// No network for header downloads: use the running node's own headers when it has them.
const nodePrefix = path.resolve(process.execPath, '..', '..');
const gypArgs = [];
if (fs.existsSync(path.join(nodePrefix, 'include', 'node', 'node_api.h'))) gypArgs.push(`--nodedir=${nodePrefix}`);
// gyp variables go after `--` (node-gyp keeps -D options before it to itself).
const gypDefines = [
  `-Dliburing_a=${liburingA}`,
  `-Dliburing_include=${path.dirname(includeDir)}`,
  `-Dsanitize=${process.env.ZCSEND_NATIVE_SANITIZE === '1' ? 1 : 0}`,
];

function run(args) {
  const started = Date.now();
  const result = spawnSync(process.execPath, [nodeGyp, ...args], {
    cwd: pkgDir,
    encoding: 'utf8',
    env: { ...process.env, npm_config_loglevel: process.env.npm_config_loglevel ?? 'warn' },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { ...result, seconds: ((Date.now() - started) / 1000).toFixed(1) };
}

// configure + build is incremental; when the inputs that make does not track
// change (liburing.a, node headers, sanitizer) start from a clean tree instead.
const stampPath = path.join(buildDir, 'zcsend-build.json');
const stamp = JSON.stringify({ gypArgs, gypDefines, node: process.version, liburing: fs.statSync(liburingA).mtimeMs });
let previous = null;
try {
  previous = fs.readFileSync(stampPath, 'utf8');
} catch {
  // first build
}
if (previous !== stamp) fs.rmSync(buildDir, { recursive: true, force: true });

const jobs = String(Math.max(1, Math.min(2, os.availableParallelism?.() ?? os.cpus().length)));
for (const step of [['configure', ...gypArgs, '--', ...gypDefines], ['build', '-j', jobs, ...gypArgs]]) {
  const result = run(step);
  if (result.error || result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    const lines = output.trim().split('\n');
    const errorLine = lines.find((line) => /error/i.test(line) && !/gyp ERR! (stack|cwd|node -v|node-gyp -v|System|command)/.test(line))
      ?? result.error?.message ?? `exit code ${result.status}`;
    process.stderr.write(lines.slice(-60).join('\n') + '\n');
    unavailable(`node-gyp ${step[0]} failed: ${errorLine.trim()}`, output);
  }
  if (step[0] === 'build') console.log(`zcsend native addon built in ${result.seconds}s: ${path.relative(process.cwd(), addonPath) || addonPath}`);
}
fs.writeFileSync(stampPath, stamp);

if (!fs.existsSync(addonPath)) unavailable(`node-gyp reported success but ${addonPath} is missing`);
// A build that links but cannot load (e.g. unresolved liburing symbols) is no build.
// (A sanitizer build loads only with the ASan runtime preloaded: see README.)
const sanitized = process.env.ZCSEND_NATIVE_SANITIZE === '1';
const check = sanitized
  ? { status: 0, stderr: '' }
  : spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addonPath)})`], { encoding: 'utf8' });
if (sanitized) {
  console.log('sanitizer build: run node with LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" ASAN_OPTIONS=detect_leaks=0');
}
if (check.status !== 0) {
  fs.rmSync(path.join(buildDir, 'zcsend-build.json'), { force: true });
  unavailable(`the built addon does not load: ${(check.stderr.split('\n').find((l) => /Error/.test(l)) ?? check.stderr).trim()}`);
}
fs.rmSync(unavailablePath, { force: true });

