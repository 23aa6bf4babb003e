#!/usr/bin/env node
// Native memory safety (pnpm test:native-sanitize):
//  1. builds @zcsend/native with AddressSanitizer + UndefinedBehaviorSanitizer in a temporary
//     copy (the normal build in packages/native/build stays untouched: others test against it),
//  2. runs core's real-socket tests against that addon (ZCSEND_NATIVE_PATH) with the ASan and
//     UBSan runtimes preloaded into node, in io_uring mode; any sanitizer report fails the run,
//  3. runs a send/close cycle under valgrind memcheck against the normal build; any invalid
//     access (or any error in the addon's or liburing's frames) fails the run.
// Usage: node scripts/native-sanitize.mjs [--skip-asan] [--skip-valgrind] [--keep] [--tests a,b]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..', '..');
const nativeDir = path.join(repo, 'packages', 'native');
const coreDir = path.join(repo, 'packages', 'core');
const { values } = parseArgs({
  options: {
    'skip-asan': { type: 'boolean', default: false },
    'skip-valgrind': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    // core's tests that put the addon on real sockets (fake-ring tests never load it).
    tests: { type: 'string', default: 'test/real-sockets.test.ts,test/workers.test.ts,test/faults.test.ts,test/fallback.test.ts,test/files.test.ts,test/files-release.test.ts' },
  },
});

const log = (line) => process.stdout.write(`[sanitize] ${line}\n`);
const results = [];
const seconds = (t0) => ((Date.now() - t0) / 1000).toFixed(1);

function run(cmd, args, opts = {}) {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, ...opts });
  return { ...r, output: `${r.stdout ?? ''}${r.stderr ?? ''}`, seconds: seconds(t0) };
}

function gccFile(name) {
  const r = run('gcc', [`-print-file-name=${name}`]);
  const file = r.stdout?.trim();
  return r.status === 0 && file && path.isAbsolute(file) && fs.existsSync(file) ? file : null;
}

/** A copy of packages/native whose node_modules point at the real node-gyp and node-addon-api. */
function copyNative(dest) {
  for (const entry of ['binding.gyp', 'package.json', 'index.js', 'index.d.ts', 'src', 'scripts']) {
    fs.cpSync(path.join(nativeDir, entry), path.join(dest, entry), { recursive: true });
  }
  const require = createRequire(path.join(nativeDir, 'package.json'));
  fs.mkdirSync(path.join(dest, 'node_modules'));
  for (const dep of ['node-gyp', 'node-addon-api']) {
    const real = fs.realpathSync(path.dirname(require.resolve(`${dep}/package.json`)));
    fs.symlinkSync(real, path.join(dest, 'node_modules', dep));
  }
}

// Sanitizer reports, whatever the test runner made of them.
const ASAN_PATTERNS = [/ERROR: AddressSanitizer/, /runtime error:/, /SUMMARY: (Address|UndefinedBehavior)Sanitizer/, /ERROR: LeakSanitizer/];

function asanStage(tmp) {
  const asan = gccFile('libasan.so');
  const ubsan = gccFile('libubsan.so');
  if (!asan || !ubsan) return { name: 'asan+ubsan', ok: false, detail: 'libasan.so/libubsan.so not found (install gcc with sanitizer runtimes)' };
  const copy = path.join(tmp, 'native');
  copyNative(copy);
  log(`building the sanitized addon in ${copy}`);
  const build = run(process.execPath, ['scripts/build.mjs'], { cwd: copy, env: { ...process.env, ZCSEND_NATIVE_SANITIZE: '1' } });
  const addon = path.join(copy, 'build', 'Release', 'zcsend_native.node');
  if (build.status !== 0 || !fs.existsSync(addon)) {
    return { name: 'asan+ubsan', ok: false, detail: `sanitized build failed (${build.seconds}s): ${build.output.slice(-3000)}` };
  }
  log(`built in ${build.seconds}s`);
  const nm = run('nm', ['-D', '--undefined-only', addon]);
  if (!/__asan_/.test(nm.output)) return { name: 'asan+ubsan', ok: false, detail: 'the built addon is not instrumented (no __asan_ symbols)' };

  const env = {
    ...process.env,
    ZCSEND_NATIVE_PATH: addon,
    ZCSEND_REQUIRE_URING: '1',
    LD_PRELOAD: `${asan} ${ubsan}`,
    // Node itself is not instrumented and keeps memory until exit by design: no leak checking.
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0:allocator_may_return_null=1',
    UBSAN_OPTIONS: 'halt_on_error=1:abort_on_error=1:print_stacktrace=1',
  };
  delete env.ZCSEND_DISABLE;
  delete env.NODE_OPTIONS;
  // The runtime really loads: a probe through the sanitized addon must see io_uring.
  const probe = run(process.execPath, ['-e', `import(${JSON.stringify(path.join(coreDir, 'dist', 'index.js'))}).then((c) => { const s = new c.Sender(); console.log(JSON.stringify({ backend: s.backend, reason: s.fallbackReason })); })`], { env });
  if (probe.status !== 0 || !/"backend":"io_uring"/.test(probe.stdout)) {
    return { name: 'asan+ubsan', ok: false, detail: `the sanitized addon does not give io_uring: ${probe.output.slice(-2000)}` };
  }
  // The harness itself must be able to fail: a canary library with a heap overflow and a signed
  // overflow in its constructor, loaded into node under the same environment, must be reported.
  const canary = canaryStage(tmp, env);
  if (!canary.ok) return { name: 'asan+ubsan', ok: false, detail: canary.detail };
  const tests = values.tests.split(',').filter((t) => fs.existsSync(path.join(coreDir, t)));
  log(`running core tests under ASan+UBSan: ${tests.join(' ')}`);
  const vitest = path.join(repo, 'node_modules', 'vitest', 'vitest.mjs');
  const t = run(process.execPath, [vitest, 'run', ...tests, '--reporter=default'], { cwd: coreDir, env });
  const plain = t.output.replace(/\x1b\[[0-9;]*m/g, '');
  fs.writeFileSync(path.join(tmp, 'asan-tests.log'), plain);
  const reports = ASAN_PATTERNS.filter((p) => p.test(plain)).map(String);
  // A sanitizer abort kills the test process: vitest then reports it rather than a test.
  const crashed = /exited unexpectedly|Worker exited|Segmentation fault|SIGSEGV|SIGABRT|signal: 6|Aborted/.test(plain);
  const summary = /Tests\s+(.*)/.exec(plain)?.[1] ?? '?';
  // Functional failures are the normal run's business; here only memory errors count.
  const failing = [...plain.matchAll(/^ FAIL {2}(.*)$/gm)].map((m) => m[1]);
  const ok = reports.length === 0 && !crashed && /Tests\s/.test(plain);
  let detail = `build ${build.seconds}s, tests ${t.seconds}s: ${summary}; canaries (a heap overflow, a signed overflow) reported; ${reports.length ? `sanitizer reports: ${reports.join(', ')}` : 'no sanitizer report'}${crashed ? '; a test process crashed' : ''}`;
  if (failing.length) detail += `\n  functional failures (not memory errors; see the normal run):\n    ${failing.join('\n    ')}`;
  if (!ok) detail += `\n${plain.slice(-6000)}`;
  return { name: 'asan+ubsan', ok, detail, seconds: Number(build.seconds) + Number(t.seconds) };
}

const CANARY_SOURCE = `
#include <stdlib.h>
#include <string.h>
static volatile int big = 2147483647;
__attribute__((constructor)) static void canary(void) {
  volatile int wrapped = big + (getenv("CANARY_UBSAN") ? 1 : 0); /* signed overflow: UBSan */
  (void)wrapped;
  if (getenv("CANARY_ASAN")) {
    char *p = malloc(8);
    memset(p, 1, 9); /* one byte past the end: ASan */
    free(p);
  }
}
`;

function canaryStage(tmp, env) {
  const source = path.join(tmp, 'canary.c');
  const lib = path.join(tmp, 'canary.so');
  fs.writeFileSync(source, CANARY_SOURCE);
  const cc = run('gcc', ['-shared', '-fPIC', '-O0', '-fsanitize=address,undefined', '-o', lib, source]);
  if (cc.status !== 0) return { ok: false, detail: `canary build failed: ${cc.output}` };
  const load = (which) => run(process.execPath, ['-e', `try { process.dlopen({ exports: {} }, ${JSON.stringify(lib)}); } catch {}`], { env: { ...env, [which]: '1' } });
  const asan = load('CANARY_ASAN');
  const ubsan = load('CANARY_UBSAN');
  const asanSeen = asan.status !== 0 && ASAN_PATTERNS.some((p) => p.test(asan.output));
  const ubsanSeen = ubsan.status !== 0 && /runtime error:/.test(ubsan.output);
  if (asanSeen && ubsanSeen) return { ok: true, detail: 'canaries reported' };
  return { ok: false, detail: `the sanitizer runtimes do not report errors in node (asan ${asanSeen}, ubsan ${ubsanSeen}): ${asan.output.slice(-500)} ${ubsan.output.slice(-500)}` };
}

// A send/close cycle: SEND_ZC sends that complete, a send cut by the peer, a socket destroyed
// with ops in flight (cancel), then close() draining every notification.
const VALGRIND_SCRIPT = `
import * as net from 'node:net';
import { once } from 'node:events';
const core = await import(process.env.CORE_DIST);
async function pair() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const receiver = net.connect(server.address().port, '127.0.0.1');
  const [sender] = await once(server, 'connection');
  server.close();
  sender.on('error', () => {}); receiver.on('error', () => {});
  return { sender, receiver };
}
const s = new core.Sender({ adaptive: false, chunkSize: 256 * 1024 });
if (s.backend !== 'io_uring') { console.log('NOT-IO_URING ' + s.fallbackReason); process.exit(3); }
const a = await pair();
let got = 0; a.receiver.on('data', (c) => { got += c.length; });
for (let i = 0; i < 4; i++) await s.send(a.sender, Buffer.alloc(1 << 20, i)).sent;
const b = await pair();
b.receiver.pause();
const cut = s.send(b.sender, Buffer.alloc(4 << 20, 7));
await new Promise((r) => setTimeout(r, 200));
b.sender.destroy();
await cut.sent.catch(() => {});
b.receiver.destroy();
await cut.released;
const c = await pair();
c.receiver.on('data', (d) => { if (d.length) c.receiver.destroy(); });
const reset = s.send(c.sender, Buffer.alloc(8 << 20, 9));
await reset.sent.catch(() => {});
await reset.released;
a.sender.end();
await s.close();
const st = s.stats();
console.log('VALGRIND-CYCLE ' + JSON.stringify({ got, ops: st.opsSubmitted, notifications: st.notifications, zc: st.zcOpsSubmitted, inFlight: st.inFlightOps, pinned: st.pinnedBytes, violations: st.violations }));
`;

function valgrindStage(tmp) {
  if (run('valgrind', ['--version']).status !== 0) return { name: 'valgrind', ok: false, detail: 'valgrind not installed' };
  const script = path.join(tmp, 'send-close-cycle.mjs');
  fs.writeFileSync(script, VALGRIND_SCRIPT);
  const env = { ...process.env, CORE_DIST: path.join(coreDir, 'dist', 'index.js') };
  delete env.ZCSEND_DISABLE;
  delete env.ZCSEND_NATIVE_PATH;
  delete env.LD_PRELOAD;
  delete env.NODE_OPTIONS;
  // The harness must be able to fail: the canary's one-byte heap overflow, built without
  // sanitizers and loaded into node under valgrind, must show as an invalid write.
  const canarySource = path.join(tmp, 'canary-plain.c');
  const canaryLib = path.join(tmp, 'canary-plain.so');
  fs.writeFileSync(canarySource, CANARY_SOURCE);
  const cc = run('gcc', ['-shared', '-fPIC', '-O0', '-g', '-o', canaryLib, canarySource]);
  const canaryLog = path.join(tmp, 'valgrind-canary.log');
  if (cc.status === 0) {
    run('valgrind', ['--tool=memcheck', '--smc-check=all-non-file', `--log-file=${canaryLog}`, process.execPath, '-e', `try { process.dlopen({ exports: {} }, ${JSON.stringify(canaryLib)}); } catch {}`], {
      env: { ...env, CANARY_ASAN: '1' },
      timeout: 5 * 60_000,
    });
  }
  const canarySeen = fs.existsSync(canaryLog) && /Invalid write of size 1/.test(fs.readFileSync(canaryLog, 'utf8'));
  if (!canarySeen) return { name: 'valgrind memcheck', ok: false, detail: `valgrind did not report the canary's invalid write (gcc exit ${cc.status})` };
  log('running a send/close cycle under valgrind memcheck (slow)');
  const logFile = path.join(tmp, 'valgrind.log');
  const v = run(
    'valgrind',
    ['--tool=memcheck', '--smc-check=all-non-file', '--error-limit=no', '--leak-check=no', '--num-callers=30', `--log-file=${logFile}`, process.execPath, '--max-old-space-size=256', script],
    { env, timeout: 15 * 60_000 },
  );
  const report = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
  const cycle = /VALGRIND-CYCLE (.*)/.exec(v.stdout ?? '')?.[1] ?? null;
  // Split memcheck's report into error records and classify them.
  const records = report.split(/\n==\d+== \n/).filter((r) => /==\d+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and destination|Argument)/.test(r));
  const invalid = records.filter((r) => /Invalid (read|write|free)|Mismatched free|Source and destination overlap/.test(r));
  const ours = records.filter((r) => /zcsend_native|liburing|io_uring_/.test(r));
  const unhandledSyscall = /unhandled .*syscall/i.test(report);
  const errorSummary = /ERROR SUMMARY: (\d+) errors/.exec(report)?.[1] ?? '?';
  const ok = v.status === 0 && cycle !== null && invalid.length === 0 && ours.length === 0 && !unhandledSyscall;
  let detail = `${v.seconds}s, canary's invalid write reported; cycle: ERROR SUMMARY ${errorSummary} (${invalid.length} invalid accesses, ${ours.length} in the addon or liburing; others are V8/Node's own uninitialised-value noise)`;
  if (cycle) detail += `; cycle ${cycle}`;
  if (unhandledSyscall) detail += '; valgrind does not know an io_uring syscall';
  if (!ok) detail += `\nexit ${v.status ?? v.signal}; stdout: ${(v.stdout ?? '').slice(-1000)}\n${[...invalid, ...ours].slice(0, 5).join('\n----\n').slice(0, 8000)}`;
  return { name: 'valgrind memcheck', ok, detail, seconds: Number(v.seconds) };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-sanitize-'));
try {
  if (!fs.existsSync(path.join(coreDir, 'dist', 'index.js'))) throw new Error('build @zcsend/core first (pnpm build)');
  if (!values['skip-asan']) results.push(asanStage(tmp));
  if (!values['skip-valgrind']) results.push(valgrindStage(tmp));
} finally {
  if (values.keep) log(`kept ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
}
for (const r of results) log(`${r.ok ? 'PASS' : 'FAIL'} ${r.name}: ${r.detail}`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
