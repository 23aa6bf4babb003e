import * as fs from 'node:fs';
import fsModule from 'node:fs';
import type { ServerResponse } from 'node:http';
import type * as net from 'node:net';
import type { FastifyReply } from 'fastify';
import { closeFileNow, type FileSender } from '@zcsend/core';
import type { PluginContext } from './context.js';
import { isClientGone } from './context.js';
import {
  connectionBypass,
  declaredLength,
  hasNoBody,
  replyConnection,
  untouchedFraming,
  whenResponseHasSocket,
  type BypassReason,
} from './eligibility.js';

/** The part of core's FileSender the plugin uses. */
export type FileBodySender = Pick<FileSender, 'sendFile' | 'stats' | 'close'>;

type Pipe = fs.ReadStream['pipe'];
const originalPipe = fs.ReadStream.prototype.pipe;

/** fs.ReadStream fields the plugin reads (set from createReadStream's options). */
interface ReadStreamRange {
  start?: number;
  end?: number;
}

/**
 * `fs.ReadStream` bodies with a path (what @fastify/static's sendFile produces): Fastify copies
 * the reply headers onto the response and calls `payload.pipe(res)`. The plugin gives this one
 * stream its own `pipe`: piped into this reply's response it sends the byte range from the
 * file through core's FileSender; piped anywhere else (a compression stream added by a later
 * hook) it is the ordinary pipe. The stream itself is never read on the zero-copy path: it is
 * ended empty, which is what Fastify's end-of-stream tracking waits for.
 */
export function armFileBody(ctx: PluginContext, reply: FastifyReply, stream: fs.ReadStream): void {
  if (Object.hasOwn(stream, 'pipe')) return;
  const res = reply.raw;
  const zcPipe = function (this: fs.ReadStream, destination: NodeJS.WritableStream, options?: { end?: boolean }) {
    delete (stream as { pipe?: Pipe }).pipe;
    if (destination !== res || options?.end === false) return originalPipe.call(stream, destination, options);
    const reason = checkNow(ctx, reply, stream);
    if (reason) {
      ctx.tracker.bypass(reason);
      return originalPipe.call(stream, destination, options);
    }
    ctx.tracker.start();
    void serve(ctx, reply, stream).then(
      (bytes) => ctx.tracker.sent('files', bytes, false),
      (outcome: unknown) => {
        if (outcome instanceof Fallback) {
          ctx.tracker.abandoned(outcome.reason);
          if (!stream.destroyed && !res.destroyed) originalPipe.call(stream, res);
          return;
        }
        ctx.tracker.sent('files', 0, true);
        onFailure(reply, outcome instanceof Failure ? outcome.error : outcome);
      },
    );
    return destination;
  } as Pipe;
  (stream as { pipe: Pipe }).pipe = zcPipe;
}

/** Nothing is on the wire yet: leave the stream to Fastify. */
class Fallback {
  constructor(readonly reason: BypassReason) {}
}

/** Headers are out and the body is incomplete: the connection must go. */
class Failure {
  constructor(readonly error: unknown) {}
}

/** Cheap checks Fastify's state allows at pipe time (the headers are set on the response now). */
function checkNow(ctx: PluginContext, reply: FastifyReply, stream: fs.ReadStream): BypassReason | null {
  const res = reply.raw;
  if (hasNoBody(reply.request.raw.method, res.statusCode)) return 'no-body';
  const connection = connectionBypass(reply);
  if (connection) return connection;
  // A Content-Encoding is no reason to stay out here: the stream is an untouched ReadStream piped
  // straight into the response, so its file's bytes are the body either way (a precompressed
  // sibling such as @fastify/static's `preCompressed` file.br). A compression stream added by a
  // hook replaces the payload, and is never piped from this stream into the response.
  if (!untouchedFraming(res) || res.headersSent || reply.hasHeader('transfer-encoding')) return 'framing';
  if (declaredLength(reply) < Math.max(ctx.threshold, 1)) return declaredLength(reply) < 0 ? 'framing' : 'below-threshold';
  if (ctx.closing || !ctx.sender.isOpen) return 'closing';
  if (!readableUntouched(stream)) return 'stream-state';
  return null;
}

/** Nothing was read from the stream nor asked of it, and its bytes are the file's bytes. */
function readableUntouched(stream: fs.ReadStream): boolean {
  const state = (stream as unknown as { _readableState?: { reading?: boolean } })._readableState;
  return (
    typeof stream.path === 'string' &&
    usesRealFs(stream) &&
    !stream.destroyed &&
    stream.bytesRead === 0 &&
    stream.readableLength === 0 &&
    stream.readableFlowing === null &&
    stream.readableEncoding === null &&
    state?.reading === false
  );
}

/**
 * createReadStream({ fs }) may read from somewhere else (an in-memory fs): then the path on disk
 * is not the body. Node keeps that option under a symbol described 'kFs'.
 */
function usesRealFs(stream: fs.ReadStream): boolean {
  const key = Object.getOwnPropertySymbols(stream).find((s) => s.description === 'kFs');
  return key === undefined || (stream as unknown as Record<symbol, unknown>)[key] === fsModule;
}

/** Sends the stream's range from its file; resolves with the bytes sent, rejects with Fallback or Failure. */
async function serve(ctx: PluginContext, reply: FastifyReply, stream: fs.ReadStream): Promise<number> {
  // A file that cannot be opened is an error Fastify reports before any header (404, 500):
  // wait for the stream's own open so that stays so.
  if (stream.pending && !(await opened(stream))) throw new Fallback('stream-state');
  const file = openOwnCopy(stream.path as string);
  if (!file) throw new Fallback('stream-state');
  try {
    return await serveFrom(ctx, reply, stream, file);
  } finally {
    // The FileSender has settled: no read or send uses the fd any more.
    closeFileNow(file.fd);
  }
}

interface OpenedFile {
  path: string;
  fd: number;
  stat: fs.Stats;
}

/**
 * The plugin's own fd on the file, so the stream's fd (which Fastify destroys when the response
 * closes, an abort included) is never one the kernel may still be reading. Synchronous on
 * purpose: the stream has just opened the same path, so the open and fstat are answered from
 * the dentry and inode caches in microseconds, where each threadpool round trip they replace
 * (stat, then the engine's open and close) cost far more per response. Closed synchronously for
 * the same reason.
 */
function openOwnCopy(path: string): OpenedFile | null {
  let fd = -1;
  try {
    fd = fs.openSync(path, 'r');
    return { path, fd, stat: fs.fstatSync(fd) };
  } catch {
    if (fd >= 0) closeFileNow(fd);
    return null;
  }
}

async function serveFrom(ctx: PluginContext, reply: FastifyReply, stream: fs.ReadStream, file: OpenedFile): Promise<number> {
  const res = reply.raw;
  const { stat } = file;
  const range = stream as unknown as ReadStreamRange;
  const start = range.start ?? 0;
  const last = range.end === undefined || range.end === Infinity ? stat.size - 1 : Math.min(range.end, stat.size - 1);
  const length = Math.max(0, last - start + 1);
  if (!stat.isFile()) throw new Fallback('stream-state');
  // A stream closing (the client went) has let go of its fd: that is no changed file.
  if (stream.destroyed) throw new Fallback('closing');
  // The path may name another file than the stream's by now: the bytes about to be sent must be
  // the stream's file (its inode), and the headers' length and Last-Modified must describe them.
  if (!sameFileAsStream(stream, stat) || length !== declaredLength(reply) || !sameLastModified(reply, stat)) throw new Fallback('file-changed');
  // A pipelined response waits for the ones before it (Node would buffer it meanwhile).
  const connection = replyConnection(reply);
  if (typeof connection === 'string') throw new Fallback(connection);
  const socket = await new Promise<net.Socket | null>((resolve) => whenResponseHasSocket(res, connection, resolve));
  if (!socket) throw new Fallback('no-socket');
  if (socket.destroyed || res.destroyed || stream.destroyed || ctx.closing) throw new Fallback('closing');

  endUnread(stream);
  res.flushHeaders();
  try {
    ctx.held.add(socket);
    const result = await ctx.files!.sendFile(socket, file, start, start + length);
    endResponse(res);
    return result.bytes;
  } catch (err) {
    throw new Failure(err);
  }
}

/** Whether the stream opened its file; false if it failed or was destroyed first (a client abort). */
function opened(stream: fs.ReadStream): Promise<boolean> {
  return new Promise((resolve) => {
    const settle = (ok: boolean) => () => {
      stream.off('ready', onReady);
      stream.off('close', onClose);
      stream.off('error', onError);
      resolve(ok);
    };
    const onReady = settle(true);
    const onClose = settle(false);
    const onError = settle(false);
    stream.once('ready', onReady);
    stream.once('close', onClose);
    stream.once('error', onError);
  });
}

/**
 * Our fd names the same file as the stream's own fd. Size and Last-Modified alone let through a
 * same-sized file renamed over the path within the same second, or with its mtime kept (rsync -a).
 */
function sameFileAsStream(stream: fs.ReadStream, stat: fs.Stats): boolean {
  // An opened ReadStream keeps its descriptor in `fd` (a number; a FileHandle when given one).
  const fd = (stream as unknown as { fd?: unknown }).fd;
  if (typeof fd !== 'number') return false;
  try {
    const streamFile = fs.fstatSync(fd);
    return streamFile.ino === stat.ino && streamFile.dev === stat.dev;
  } catch {
    return false;
  }
}

/** @fastify/static's Last-Modified comes from its own stat: a different one means a different file. */
function sameLastModified(reply: FastifyReply, stat: fs.Stats): boolean {
  const header = reply.getHeader('last-modified');
  return header === undefined || String(header) === stat.mtime.toUTCString();
}

/**
 * End the stream without reading it: Fastify's end-of-stream tracking then sees a finished
 * source (not a premature close), and autoDestroy closes the stream's fd.
 */
function endUnread(stream: fs.ReadStream): void {
  stream.push(null);
  stream.resume();
}

function endResponse(res: ServerResponse): void {
  if (!res.writableEnded && !res.destroyed) res.end();
}

function onFailure(reply: FastifyReply, err: unknown): void {
  const res = reply.raw;
  // Same words Fastify logs when a streamed body dies after its headers went out.
  if (isClientGone(err)) reply.log.info({ res: reply }, 'stream closed prematurely');
  else reply.log.warn({ err }, 'response terminated with an error with headers already sent');
  res.destroy();
}
