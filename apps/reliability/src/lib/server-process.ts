// Servers under test run in their own process: a crash shows as an exit, and /proc gives their
// own fd count and RSS. Both zcserve and the Fastify app print a banner with the URL and backend.
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** The zcserve entry point of the workspace's @zcsend/http-server. */
export const ZCSERVE_BIN = path.join(path.dirname(require.resolve('@zcsend/http-server/package.json')), 'bin', 'zcserve.js');
/** This package's root (src/lib and dist/lib are both two levels below it). */
export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The Fastify app (built): `node fastify-app.js <root> --port 0 [--timeout ms]`. */
export const FASTIFY_APP = path.join(PACKAGE_DIR, 'dist', 'servers', 'fastify-app.js');

export const STATS_PATH = '/_zcsend/stats';

export type ServerKind = 'zcserve' | 'fastify';
export type Mode = 'uring' | 'copy';

export interface ServerSpec {
  kind: ServerKind;
  /** 'auto' leaves the backend to the server (no zcsend mode variables at all). */
  mode: Mode | 'auto';
  root: string;
  /** Socket inactivity timeout (ms): stalled clients are cut off after it. */
  timeoutMs: number;
  /** Extra environment (merged over a copy of process.env without the zcsend mode variables). */
  env?: Record<string, string>;
  /** Run the command through this launcher (argv prefix), e.g. the seccomp wrapper. */
  launcher?: string[];
  /** Extra arguments for the server. */
  args?: string[];
}

export interface RunningServer {
  pid: number;
  url: string;
  port: number;
  backend: string;
  child: ChildProcess;
  /** Everything the process wrote so far. */
  output(): { stdout: string; stderr: string };
  /** Set once the process exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with how it exited. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Environment for a server in `mode`: io_uring required (and SEND_ZC forced on loopback), disabled, or left to the server. */
export function modeEnv(mode: Mode | 'auto', base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  delete env.ZCSEND_DISABLE;
  delete env.ZCSEND_REQUIRE_URING;
  delete env.ZCSEND_ADAPTIVE;
  delete env.NODE_OPTIONS; // vitest's loader hooks have no business in the server
  if (mode === 'copy') env.ZCSEND_DISABLE = '1';
  else if (mode === 'uring') {
    env.ZCSEND_REQUIRE_URING = '1';
    // Loopback would otherwise switch to plain ring sends: force SEND_ZC so notifications run.
    env.ZCSEND_ADAPTIVE = '0';
  }
  return env;
}

function commandFor(spec: ServerSpec): string[] {
  const seconds = String(spec.timeoutMs / 1000);
  if (spec.kind === 'zcserve') {
    return [ZCSERVE_BIN, spec.root, '--port', '0', '--host', '127.0.0.1', '--stats', '--quiet', '--timeout', seconds, ...(spec.args ?? [])];
  }
  return [FASTIFY_APP, spec.root, '--port', '0', '--timeout', String(spec.timeoutMs), ...(spec.args ?? [])];
}

export function startServer(spec: ServerSpec, startTimeoutMs = 30_000): Promise<RunningServer> {
  const env = { ...modeEnv(spec.mode), ...(spec.env ?? {}) };
  const argv = [...(spec.launcher ?? []), process.execPath, ...commandFor(spec)];
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (s: string) => (stdout = (stdout + s).slice(-1_000_000)));
  child.stderr!.on('data', (s: string) => (stderr = (stderr + s).slice(-1_000_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      running.exit = { code, signal };
      resolve({ code, signal });
    }),
  );

  const running: RunningServer = {
    pid: child.pid ?? -1,
    url: '',
    port: 0,
    backend: '',
    child,
    output: () => ({ stdout, stderr }),
    exit: null,
    async stop(graceMs = 15_000) {
      if (running.exit) return running.exit;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${spec.kind} did not print its banner within ${startTimeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, startTimeoutMs);
    const onData = () => {
      const url = /listening on (http:\/\/[^\s]+)/.exec(stdout)?.[1];
      const backend = /^\s*backend\s+(.+)$/m.exec(stdout)?.[1];
      if (!url || !backend) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      running.url = url.replace(/\/$/, '');
      running.port = Number(new URL(url).port);
      running.backend = backend.trim();
      resolve(running);
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${spec.kind} exited (${signal ?? code}) before listening\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}

/** GET on a fresh connection (no keep-alive: the server's fd count returns to baseline). */
export function getOnce(url: string, timeoutMs = 10_000): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await getOnce(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  return JSON.parse(res.body.toString('utf8')) as T;
}
