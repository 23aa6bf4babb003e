// The body step for files: the file opened and checked against the stat the headers come from,
// headers through node:http, then the bytes through the core FileSender straight to the socket;
// or, where the kernel may not write to the connection (TLS, HTTP/2), bounded reads through
// res.write. Every byte is read from that one fd.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import { closeFileNow, type FileRef, type FileSender, type FileSendResult } from '@zcsend/core';
import { whenLibuvIdle, whenResponseSocket } from '../response-socket.js';
import type { MultipartLayout, ByteRange } from './ranges.js';
import type { Representation } from './representation.js';

export type BodyOutcome =
  | { ok: true; bytes: number; engine: FileSendResult['engine'] | 'stream' }
  /**
   * `stale`: the file is no longer the version the headers were made from (renamed over,
   * rewritten, removed) and nothing of the response went out: it may be answered afresh.
   */
  | { ok: false; bytes: number; error: unknown; stale: boolean };

/** The pieces of a body: one range of a file, or multipart framing around several. */
export type BodyPlan = { kind: 'range'; range: ByteRange } | { kind: 'multipart'; layout: MultipartLayout };

const STREAM_CHUNK = 64 * 1024;

/** True when the kernel may write to the connection under `res` directly. */
function rawSocketUsable(req: http.IncomingMessage, res: http.ServerResponse, socket: net.Socket): boolean {
  return (
    req.httpVersionMajor === 1 &&
    res instanceof http.ServerResponse &&
    !res.strictContentLength &&
    !(socket as { encrypted?: boolean }).encrypted &&
    !socket.destroyed &&
    socket.writable
  );
}

/**
 * Writes the status and a flat [name, value, ...] header list. `raw`: Node's fast flat-list
 * writeHead for HTTP/1, whose headers `getHeader()` cannot read back. Otherwise each header
 * replaces any of that name set before (by earlier middleware) and stays readable, which is what
 * Node's own writeHead does with a list once any header was set. HTTP/2's compatibility layer
 * gets an object.
 */
export function writeHead(res: http.ServerResponse, status: number, headers: readonly string[], raw: boolean): void {
  if (res instanceof http.ServerResponse) {
    if (raw) {
      res.writeHead(status, headers as string[]);
      return;
    }
    for (let i = 0; i < headers.length; i += 2) res.removeHeader(headers[i]!);
    for (let i = 0; i < headers.length; i += 2) res.appendHeader(headers[i]!, headers[i + 1]!);
    res.writeHead(status);
    return;
  }
  const obj: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2) obj[headers[i]!.toLowerCase()] = headers[i + 1]!;
  (res as http.ServerResponse).writeHead(status, obj);
}

/**
 * Opens the file and checks it is `rep`'s version, then writes status and headers, the body
 * described by `plan` (read through that fd, so a deploy renaming a new file over the path
 * meanwhile cannot put its bytes under these headers) and ends the response. Never rejects: a
 * body cut short destroys the connection (its framing is broken) and reports it.
 */
export async function sendFileBody(
  fileSender: FileSender,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  rep: Representation,
  status: number,
  headers: readonly string[],
  plan: BodyPlan,
  rawHeaders: boolean,
): Promise<BodyOutcome> {
  // A pipelined response waits its turn; its headers must not be queued before we know the path.
  const pending = whenResponseSocket(res);
  const socket = pending instanceof Promise ? await pending : pending;
  if (!socket) return { ok: false, bytes: 0, error: new Error('connection closed before the response started'), stale: false };

  let fd: number;
  try {
    fd = await fileSender.openVersion({ path: rep.fsPath, stat: rep.stat });
  } catch (error) {
    return { ok: false, bytes: 0, error, stale: true };
  }
  try {
    writeHead(res, status, headers, rawHeaders);
    if (!rawSocketUsable(req, res, socket)) return await streamBody(res, fd, plan);
    return await socketBody(fileSender, res, socket, { path: rep.fsPath, stat: rep.stat, fd }, plan);
  } finally {
    // Every read and send of it has settled: nothing uses the fd any more.
    closeFileNow(fd);
  }
}

/** The body on the raw socket by the FileSender, after the headers went out through node:http. */
async function socketBody(fileSender: FileSender, res: http.ServerResponse, socket: net.Socket, file: FileRef & { fd: number }, plan: BodyPlan): Promise<BodyOutcome> {
  res.flushHeaders();
  let bytes = 0;
  let engine: FileSendResult['engine'] = 'copy';
  try {
    if (plan.kind === 'range') {
      const result = await sendRange(fileSender, socket, file, plan.range);
      bytes = result.bytes;
      engine = result.engine;
    } else {
      for (const part of plan.layout.parts) {
        await writeRaw(socket, part.head);
        const result = await sendRange(fileSender, socket, file, part.range);
        bytes += result.bytes;
        engine = result.engine;
      }
      await writeRaw(socket, plan.layout.tail);
    }
  } catch (error) {
    // Content-Length promised bytes that will not all come: the connection cannot carry another response.
    if (!socket.destroyed) socket.destroy();
    return { ok: false, bytes, error, stale: false };
  }
  res.end();
  return { ok: true, bytes, engine };
}

/**
 * One range of a file on the raw socket, once libuv has written what it holds for it; `head`
 * (the response head, not yet written) goes with the first bytes of the body.
 */
export async function sendRange(fileSender: FileSender, socket: net.Socket, file: FileRef, range: ByteRange, head?: Buffer): Promise<FileSendResult> {
  // The Sender also waits for libuv; waiting here covers engines that write without it.
  const idle = whenLibuvIdle(socket);
  if (idle) await idle;
  return fileSender.sendFile(socket, file, range.start, range.end, { head });
}

function writeRaw(socket: net.Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/** The plain path: file bytes through res.write with backpressure, then res.end(). */
async function streamBody(res: http.ServerResponse, fd: number, plan: BodyPlan): Promise<BodyOutcome> {
  let bytes = 0;
  try {
    if (plan.kind === 'range') {
      bytes += await streamRange(res, fd, plan.range);
    } else {
      for (const part of plan.layout.parts) {
        await writeRes(res, part.head);
        bytes += await streamRange(res, fd, part.range);
      }
      await writeRes(res, plan.layout.tail);
    }
  } catch (error) {
    res.destroy();
    return { ok: false, bytes, error, stale: false };
  }
  res.end();
  return { ok: true, bytes, engine: 'stream' };
}

function writeRes(res: http.ServerResponse, data: Uint8Array): Promise<void> {
  if (res.destroyed) return Promise.reject(new Error('response closed'));
  if (res.write(data)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('response closed'));
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** Positioned reads of one range, each awaited before the next, so none is pending once this settles. */
async function streamRange(res: http.ServerResponse, fd: number, range: ByteRange): Promise<number> {
  let position = range.start;
  while (position < range.end) {
    // A fresh buffer per chunk: res.write may hold it until the socket takes it.
    const chunk = Buffer.allocUnsafe(Math.min(STREAM_CHUNK, range.end - position));
    const n = await readAt(fd, chunk, position);
    // The file shrank since its stat: the promised length cannot be met.
    if (n === 0) throw new Error('file changed while being sent');
    await writeRes(res, n === chunk.length ? chunk : chunk.subarray(0, n));
    position += n;
  }
  return range.end - range.start;
}

function readAt(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buffer, 0, buffer.length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}
