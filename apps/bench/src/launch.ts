// Starting the competitors, each by its documented entry point, pinned to the server core.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SkipError } from './context.js';
import { waitForHttp } from './http-check.js';
import type { RunningServer } from './http-suite.js';
import { Child } from './spawn.js';
import { nginxVersion } from './tools.js';

const require = createRequire(import.meta.url);
const STARTUP_MS = 20_000;

/** A port free right now on 127.0.0.1, for servers that cannot listen on port 0 and say which. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The installed package's directory, or a SkipError naming what is missing. */
export function packageDir(name: string): { dir: string; version: string } {
  let manifest: string;
  try {
    manifest = require.resolve(`${name}/package.json`);
  } catch {
    throw new SkipError(`${name} is not installed (pnpm install)`);
  }
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  return { dir: path.dirname(manifest), version };
}

/** A script of this package's dist/servers (or dist/drivers) directory. */
export function ownScript(relative: string): string {
  return fileURLToPath(new URL(relative, import.meta.url));
}

/**
 * Runs a Node script that prints "listening <port> <details>" (or "skip <reason>" before exiting).
 */
export async function startAnnouncingScript(name: string, script: string, args: readonly string[], cpu: number | null): Promise<RunningServer> {
  const child = new Child(name, process.execPath, [script, ...args], { cpu });
  let match: RegExpExecArray;
  try {
    match = await child.waitFor(/^(?:listening (\d+) (.*)|skip (.*))$/m, STARTUP_MS);
  } catch (err) {
    await child.stop();
    throw err;
  }
  if (match[3] !== undefined) {
    await child.stop();
    throw new SkipError(match[3]);
  }
  return { child, baseUrl: `http://127.0.0.1:${match[1]}`, details: match[2] ?? '' };
}

/** Runs a server on a port chosen beforehand and waits until it answers HTTP. */
async function startOnPort(name: string, command: string, args: readonly string[], port: number, cpu: number | null, details: string): Promise<RunningServer> {
  const child = new Child(name, command, args, { cpu });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${baseUrl}/`, child, STARTUP_MS);
  } catch (err) {
    await child.stop();
    throw err;
  }
  return { child, baseUrl, details };
}

export interface ZcserveOptions {
  cacheBytes: number;
}

/** zcserve by its CLI: `node packages/http-server/bin/zcserve.js <root> --port 0 --host 127.0.0.1 --quiet`. */
export async function startZcserve(root: string, cpu: number | null, options: ZcserveOptions): Promise<RunningServer> {
  const { dir, version } = packageDir('@zcsend/http-server');
  const bin = path.join(dir, 'bin', 'zcserve.js');
  if (!existsSync(bin)) throw new SkipError('zcserve: bin/zcserve.js not found');
  if (!existsSync(path.join(dir, 'dist', 'cli.js'))) throw new SkipError('zcserve: @zcsend/http-server is not built (pnpm build)');
  const args = [bin, root, '--port', '0', '--host', '127.0.0.1', '--quiet', '--cache', `${options.cacheBytes}`];
  const child = new Child('zcserve', process.execPath, args, { cpu });
  let match: RegExpExecArray;
  try {
    match = await child.waitFor(/listening on (http:\/\/[^\s/]+)/, STARTUP_MS);
  } catch (err) {
    await child.stop();
    throw err;
  }
  const backend = /backend\s+(.+)/.exec(child.output)?.[1]?.trim() ?? 'backend unknown';
  return { child, baseUrl: match[1]!, details: `zcserve ${version}, ${backend}` };
}

export async function startHttpServerPackage(root: string, cpu: number | null): Promise<RunningServer> {
  const { dir, version } = packageDir('http-server');
  const port = await freePort();
  // -c-1: no caching headers; -s: silent (no per-request log).
  const args = [path.join(dir, 'bin', 'http-server'), root, '-p', String(port), '-a', '127.0.0.1', '-s', '-c-1'];
  return startOnPort('http-server', process.execPath, args, port, cpu, `http-server ${version}`);
}

export async function startSirv(root: string, cpu: number | null): Promise<RunningServer> {
  const { dir, version } = packageDir('sirv-cli');
  const port = await freePort();
  const args = [path.join(dir, 'bin.js'), root, '--port', String(port), '--host', '127.0.0.1', '--quiet'];
  return startOnPort('sirv-cli', process.execPath, args, port, cpu, `sirv-cli ${version}`);
}

/**
 * nginx with one worker, as a static server would be configured for speed: keep-alive without a
 * request cap, open_file_cache, no access log; `sendfile` on or off (then 2 × 32 KiB read buffers).
 */
export async function startNginx(binary: string | null, missing: string | undefined, root: string, scratch: string, sendfile: boolean, cpu: number | null): Promise<RunningServer> {
  if (!binary) throw new SkipError(`nginx ${missing ?? 'not found'}`);
  const dir = path.join(scratch, sendfile ? 'nginx-sendfile-on' : 'nginx-sendfile-off');
  mkdirSync(path.join(dir, 'temp'), { recursive: true });
  const port = await freePort();
  const conf = `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile ${sendfile ? 'on' : 'off'};
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 65s;
  open_file_cache max=1000 inactive=60s;
  client_body_temp_path ${dir}/temp/body;
  proxy_temp_path ${dir}/temp/proxy;
  fastcgi_temp_path ${dir}/temp/fastcgi;
  uwsgi_temp_path ${dir}/temp/uwsgi;
  scgi_temp_path ${dir}/temp/scgi;
  types { application/octet-stream bin; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`;
  const confPath = path.join(dir, 'nginx.conf');
  writeFileSync(confPath, conf);
  const details = `nginx ${nginxVersion(binary)}, 1 worker, sendfile ${sendfile ? 'on' : 'off'}`;
  return startOnPort(sendfile ? 'nginx-sendfile' : 'nginx-nosendfile', binary, ['-p', dir, '-c', confPath, '-e', path.join(dir, 'error.log')], port, cpu, details);
}
