// The zcserve command as a child process: --help, bad flags, banner, access log, --stats,
// --no-zc, --workers, and graceful shutdown on SIGTERM/SIGINT under load.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import type * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { MODE, MiB, URING, connectOutcome, downloadUntilClose, makeTree, randomBytes, sha256, type Tree } from './helpers.js';
import { FLAGS } from '../src/cli/args.js';

const pkg = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const BIN = path.join(pkg, 'bin', 'zcserve.js');

let tree: Tree;
const children: ChildProcess[] = [];

/** Newest modification time of the files under `dir`. */
function newest(dir: string): number {
  let t = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) t = Math.max(t, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return t;
}

beforeAll(() => {
  // The bin runs the built CLI (turbo builds before testing); rebuild if the sources are newer.
  const cli = path.join(pkg, 'dist', 'cli.js');
  if (!fs.existsSync(cli) || fs.statSync(cli).mtimeMs < newest(path.join(pkg, 'src'))) {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const built = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: pkg });
    expect(built.status, String(built.stdout) + String(built.stderr)).toBe(0);
  }
  tree = makeTree();
  tree.write('big.bin', randomBytes(24 * MiB));
});

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

afterAll(() => tree?.cleanup());

interface Started {
  child: ChildProcess;
  url: string;
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: pkg, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, out: () => out, err: () => err, exit };
}

async function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Started> {
  const r = run(args, env);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = /listening on (http:\/\/\S+)/.exec(r.out());
    if (m) return { ...r, url: m[1]! };
    if (r.child.exitCode !== null || Date.now() > deadline) throw new Error(`zcserve did not start: ${r.out()} ${r.err()}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe(`zcserve CLI (${MODE})`, () => {
  it('--help lists every flag with its default and exits 0', async () => {
    const r = run(['--help']);
    const { code } = await r.exit;
    expect(code).toBe(0);
    const help = r.out();
    const lines = help.split('\n');
    for (const flag of FLAGS) {
      const line = lines.find((l) => l.includes(`--${flag.name}${flag.arg ? ' ' : ''}`) && l.includes(`--${flag.name}${flag.arg ? ` ${flag.arg}` : ' '}`));
      expect(line, flag.name).toBeDefined();
      if (flag.default !== undefined) expect(line).toContain(`(default: ${flag.default})`);
      else if (flag.name !== 'help' && flag.name !== 'version') expect(line).toContain('(default: off)');
    }
    expect(help).toMatch(/--port N\s+.*\(default: 8080\)/);
    expect(help).toMatch(/--host ADDR\s+.*\(default: 127\.0\.0\.1\)/);
    expect(help).toMatch(/--cache SIZE\s+.*\(default: 256MB\)/);
    expect(help).toMatch(/--engine auto\|zc-cache\|splice\|sendfile\|copy\s+.*\(default: auto\)/);
    expect(help).toMatch(/--list\s+.*\(default: off\)/);
    expect(help).toMatch(/--no-zc\s+.*\(default: off\)/);
  });

  it('exits 2 with a one-line message on bad flags', async () => {
    const bad = [
      ['--bogus'],
      ['--port', 'x'],
      ['--port', '70000'],
      ['--engine', 'turbo'],
      ['--cache', 'lots'],
      ['--dotfiles', 'maybe'],
      ['--workers', '0'],
      ['--timeout', '-1'],
      ['--host', 'bad host!'],
      ['a', 'b'],
      ['--max-in-flight', '1k'],
      [path.join(tree.dir, 'does-not-exist')],
    ];
    for (const args of bad) {
      const r = run(args);
      const { code } = await r.exit;
      expect(code, args.join(' ')).toBe(2);
      const lines = r.err().trim().split('\n');
      expect(lines.length, r.err()).toBe(1);
      expect(lines[0]).toMatch(/^zcserve: /);
      expect(r.err()).not.toMatch(/\n\s+at /);
    }
  });

  it('prints a banner with the real URL, root and backend, logs requests, and exits 0 on SIGTERM', async () => {
    const s = await start([tree.root, '-p', '0', '--stats']);
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(s.url).not.toContain(':0/');
    expect(s.out()).toContain(`root     ${tree.root}`);
    if (URING) expect(s.out()).toMatch(/backend\s+io_uring zero-copy/);
    else expect(s.out()).toMatch(/backend\s+copy \(.*ZCSEND_DISABLE/);
    const res = await request(s.url + 'big.bin');
    expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(tree.files['big.bin']!));
    const stats = await request(s.url + '_zcsend/stats');
    const json = (await stats.body.json()) as {
      backend: string;
      sender: { bytesSent: number; inFlightOps: number };
      files: { cache: { limitBytes: number }; byEngine: { splice: { bytes: number }; sendfile: { bytes: number } } };
    };
    expect(json.backend).toBe(URING ? 'io_uring' : 'copy');
    // Spliced and sendfile bodies never pass through the Sender's send ops: count every path.
    expect(json.sender.bytesSent + json.files.byEngine.splice.bytes + json.files.byEngine.sendfile.bytes).toBeGreaterThanOrEqual(24 * MiB);
    expect(json.files.cache.limitBytes).toBe(256 * MiB);
    const metrics = await request(s.url + '_zcsend/metrics');
    expect(metrics.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await metrics.body.text();
    expect(text).toMatch(/^# TYPE zcsend_bytes_sent_total counter$/m);
    expect(text).toMatch(/^zcsend_bytes_sent_total \d+$/m);
    expect(text).toMatch(/^zcsend_pinned_bytes \d+$/m);
    expect(text).toMatch(/^zcsend_file_cache_bytes \d+$/m);
    expect(text).toMatch(/^zcsend_http_responses_total\{code="200"\} \d+$/m);
    s.child.kill('SIGTERM');
    const { code } = await s.exit;
    expect(code).toBe(0);
    expect(s.out()).toMatch(/"GET \/big\.bin HTTP\/1\.1" 200 25165824 /);
    expect(s.out()).toContain('zcserve: stopped');
  });

  it('--quiet silences the access log; --no-zc reports the copy backend; stats endpoints are off without --stats', async () => {
    const s = await start([tree.root, '-p', '0', '--quiet', '--no-zc']);
    expect(s.out()).toMatch(/backend\s+copy \(--no-zc\)/);
    const res = await request(s.url + 'small.txt');
    expect(await res.body.text()).toBe(tree.files['small.txt']!.toString());
    const stats = await request(s.url + '_zcsend/stats');
    await stats.body.arrayBuffer();
    expect(stats.statusCode).toBe(404);
    s.child.kill('SIGINT');
    expect((await s.exit).code).toBe(0);
    expect(s.out()).not.toContain('"GET /small.txt');
  });

  it('keeps node:http\'s header size limit on the fast path when --max-http-header-size lowers it', async () => {
    const s = await start([tree.root, '-p', '0', '--quiet'], { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-http-header-size=4096` });
    const big = await request(s.url + 'small.txt', { headers: { 'x-big': 'a'.repeat(6000) } });
    await big.body.arrayBuffer();
    expect(big.statusCode).toBe(431);
    const ok = await request(s.url + 'small.txt', { headers: { 'x-big': 'a'.repeat(3000) } });
    expect(await ok.body.text()).toBe(tree.files['small.txt']!.toString());
    s.child.kill('SIGTERM');
    expect((await s.exit).code).toBe(0);
  });

  it('finishes in-flight responses on SIGTERM under load, refuses new connections, and exits 0', async () => {
    const s = await start([tree.root, '-p', '0', '--quiet']);
    const port = Number(new URL(s.url).port);
    const sockets: net.Socket[] = [];
    const downloads = Array.from({ length: 8 }, () => {
      const { socket, raw } = downloadUntilClose(port, '/big.bin');
      sockets.push(socket);
      return raw;
    });
    // Every client has its first bytes and stops reading: eight responses are in flight.
    await new Promise<void>((resolve) => {
      const check = () => (sockets.length === 8 && sockets.every((x) => x.bytesRead > 0) ? resolve() : setTimeout(check, 10));
      check();
    });
    for (const socket of sockets) socket.pause();
    s.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(await connectOutcome(port)).toBe('ECONNREFUSED');
    expect(s.child.exitCode).toBeNull(); // still finishing the eight responses
    for (const socket of sockets) socket.resume();
    const bodies = await Promise.all(downloads);
    for (const raw of bodies) {
      expect(raw.subarray(0, 15).toString()).toBe('HTTP/1.1 200 OK');
      expect(sha256(raw.subarray(raw.indexOf('\r\n\r\n') + 4))).toBe(sha256(tree.files['big.bin']!));
    }
    const { code } = await s.exit;
    expect(code).toBe(0);
    expect(s.out()).toContain('SIGTERM: finishing in-flight responses');
    expect(s.out()).toContain('zcserve: stopped');
  });

  it('--workers 2 runs two processes on one port and shuts both down on SIGTERM', async () => {
    const s = await start([tree.root, '-p', '0', '--workers', '2', '--quiet', '--stats']);
    expect(s.out()).toMatch(/workers\s+2/);
    const pids = new Set<number>();
    for (let i = 0; i < 40 && pids.size < 2; i++) {
      const res = await request(s.url + '_zcsend/stats', { reset: true } as never);
      const json = (await res.body.json()) as { pid: number; backend: string };
      expect(json.backend).toBe(URING ? 'io_uring' : 'copy');
      pids.add(json.pid);
    }
    expect(pids.size).toBe(2);
    expect(pids.has(s.child.pid!)).toBe(false);
    const res = await request(s.url + 'big.bin');
    expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(tree.files['big.bin']!));
    s.child.kill('SIGTERM');
    expect((await s.exit).code).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
