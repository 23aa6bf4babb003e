// Shared test machinery: a file tree on disk, servers on 127.0.0.1 port 0, raw HTTP clients.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { once } from 'node:events';
import * as os from 'node:os';
import * as path from 'node:path';
import { Sender, probe, type SenderStats } from '@zcsend/core';
import { MODE, REQUIRE_URING, randomBytes } from '@zcsend/test-utils';
import { createFileServer, type FileServer, type FileServerOptions } from '../src/index.js';

export { MODE, REQUIRE_URING, randomBytes, sha256, waitFor } from '@zcsend/test-utils';
const machine = MODE === 'uring' ? probe() : null;
/** io_uring assertions apply when the ring is usable, and also when it is required (then they fail). */
export const URING = machine !== null && (machine.available || REQUIRE_URING);
if (machine && !URING) console.warn(`[zcsend] io_uring unavailable, the copy backend serves: ${machine.reason}`);

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** A Sender for in-process servers: in io_uring mode adaptive is off, so SEND_ZC really runs on loopback. */
export function testSender(): Sender {
  return new Sender(MODE === 'uring' ? { adaptive: false } : {});
}

export interface Tree {
  dir: string;
  root: string;
  outside: string;
  files: Record<string, Buffer>;
  write(rel: string, data: Buffer | string): Buffer;
  cleanup(): void;
}

export const OUTSIDE_SECRET = 'TOP-SECRET-OUTSIDE-ROOT';

/** A served root with files of every size class, precompressed siblings, dotfiles and symlinks. */
export function makeTree(): Tree {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcserve-test-'));
  const root = path.join(dir, 'root');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  const files: Record<string, Buffer> = {};
  const write = (rel: string, data: Buffer | string): Buffer => {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const full = path.join(root, rel);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, buf);
    files[rel] = buf;
    return buf;
  };
  write('index.html', '<!doctype html><title>home</title>\n');
  write('small.txt', 'small text file\n'.repeat(64));
  write('empty.txt', '');
  write('medium.bin', randomBytes(200 * KiB));
  write('large.bin', randomBytes(5 * MiB + 123));
  write('data.json', '{"ok":true}\n');
  write('style.css', 'body { color: red }\n'.repeat(10));
  write('style.css.br', randomBytes(37));
  write('style.css.gz', randomBytes(41));
  write('app.js', randomBytes(300 * KiB));
  write('app.js.gz', randomBytes(150 * KiB));
  write('sub/index.html', '<p>sub index</p>\n');
  write('sub/page.txt', 'sub page\n');
  write('nested/deeper/file.txt', 'deep\n');
  write('nested/weird <name> & "quotes".txt', 'weird\n');
  write('nested/h\u00e9llo w\u00f6rld.txt', 'unicode\n');
  write('.secret', 'dotfile secret\n');
  write('.hidden/inner.txt', 'hidden dir\n');
  write('sub/.env', 'SUB_SECRET=1\n');
  fs.writeFileSync(path.join(outside, 'secret.txt'), OUTSIDE_SECRET + '\n');
  fs.symlinkSync(path.join(root, 'medium.bin'), path.join(root, 'link-inside.bin'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'link-outside.txt'));
  fs.symlinkSync(outside, path.join(root, 'dir-link-outside'));
  fs.symlinkSync('/etc', path.join(root, 'etc-link'));
  return { dir, root, outside, files, write, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface Running {
  fileServer: FileServer;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A file server on 127.0.0.1 port 0 with the test Sender unless options say otherwise. */
export async function startServer(options: Partial<FileServerOptions> & { root: string }): Promise<Running> {
  const own = options.sender === undefined && options.zeroCopy !== false ? testSender() : null;
  const fileServer = createFileServer({ ...options, ...(own ? { sender: own } : {}) });
  const { url, port } = await fileServer.listen(0, '127.0.0.1');
  return {
    fileServer,
    url,
    port,
    async close() {
      await fileServer.close();
      if (own) await own.close();
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Parses HTTP/1.1 responses framed by Content-Length (as this server always frames them). */
export class ResponseParser {
  private buf: Buffer = Buffer.alloc(0);
  readonly responses: RawResponse[] = [];

  /** `heads` lists, per expected response, whether it answers a HEAD (no body whatever the length says). */
  constructor(private readonly heads: boolean[] = []) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(head[0]!.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      const isHead = this.heads[this.responses.length] ?? false;
      const bodyless = isHead || status === 204 || status === 304 || status < 200;
      const length = bodyless ? 0 : Number(headers['content-length'] ?? 0);
      if (this.buf.length < end + 4 + length) return;
      this.responses.push({ status, headers, body: Buffer.from(this.buf.subarray(end + 4, end + 4 + length)) });
      this.buf = this.buf.subarray(end + 4 + length);
    }
  }

  get leftover(): number {
    return this.buf.length;
  }
}

/** Opens a connection, writes `text`, and collects `count` responses (or what came before the close). */
export function rawExchange(
  port: number,
  text: string | Buffer,
  count: number,
  heads: boolean[] = [],
  timeoutMs = 20_000,
): Promise<{ responses: RawResponse[]; socket: net.Socket; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const parser = new ResponseParser(heads);
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out with ${parser.responses.length}/${count} responses`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve({ responses: parser.responses, socket, closed });
    };
    const onData = (chunk: Buffer) => {
      parser.push(chunk);
      if (parser.responses.length >= count) finish();
    };
    socket.on('data', onData);
    socket.on('error', () => {});
    socket.once('close', () => {
      closed = true;
      finish();
    });
    socket.once('connect', () => socket.write(text));
  });
}

/**
 * One keep-alive GET on a new connection that reads every byte until the server closes it: for
 * shutdown tests (the socket is returned at once so the test can pause and resume it).
 */
export function downloadUntilClose(port: number, target: string): { socket: net.Socket; raw: Promise<Buffer> } {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const raw = (async () => {
    await once(socket, 'connect');
    socket.write(`GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'close');
    return Buffer.concat(chunks);
  })();
  return { socket, raw };
}

/** What a new connection to `port` meets: 'connected', or the error code (e.g. 'ECONNREFUSED'). */
export function connectOutcome(port: number): Promise<string> {
  return new Promise<string>((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    c.once('connect', () => {
      c.destroy();
      resolve('connected');
    });
  });
}

/** One GET with Connection: close through a raw socket: the target goes to the server byte for byte. */
export async function rawGet(port: number, target: string, headers = ''): Promise<RawResponse> {
  const { responses, socket } = await rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n${headers}\r\n`, 1);
  socket.destroy();
  if (!responses[0]) throw new Error(`no response to ${target}`);
  return responses[0];
}

/** The Sender holds nothing: no op in flight, no pinned bytes, no notification owed. */
export function senderQuiet(stats: SenderStats): boolean {
  return stats.inFlightOps === 0 && stats.pinnedBytes === 0 && stats.pendingNotifications === 0;
}

/** Everything the server holds for bodies is back to zero. */
export function serverQuiet(running: Running): boolean {
  const s = running.fileServer.stats();
  return senderQuiet(s.sender) && s.files.inFlightBytes === 0 && s.files.activeSends === 0 && s.files.cache.busyBytes === 0;
}
