import * as http from 'node:http';
import * as net from 'node:net';
import type { FastifyReply } from 'fastify';
import { whenResponseSocket, type Sender } from '@zcsend/core';

/** Why a reply body was left to Fastify. Counted in `stats().replies.bypassed`. */
export type BypassReason =
  /** Body smaller than the threshold (or empty). */
  | 'below-threshold'
  /** HEAD, 1xx, 204, 304: no body on the wire. */
  | 'no-body'
  /** No real socket: `inject()`, or the connection closed before the response's turn. */
  | 'no-socket'
  | 'tls'
  /** HTTP/2 (or anything that is not an HTTP/1.x ServerResponse). */
  | 'http2'
  /** A byte body with a Content-Encoding: compressed output is never touched (file streams are sent as their file). */
  | 'encoded'
  /** The framing is not a plain Content-Length body (chunked, trailers, headers already written). */
  | 'framing'
  /** The copy backend is active: Fastify's own write is as good, so the plugin stays out of the way. */
  | 'copy-backend'
  /**
   * Adaptive mode and a loopback peer: the kernel copies for loopback anyway and the Sender would
   * use plain sends, so Fastify's own write (headers and body in one syscall) is cheaper.
   */
  | 'loopback'
  /** Adaptive mode and a peer (or this socket) whose zero-copy sends the kernel reported as copied. */
  | 'copied'
  /** The plugin (or its Sender) is closing. */
  | 'closing'
  /** The file stream was already read from, has an encoding, or no usable path/range. */
  | 'stream-state'
  /** The path names another file than the stream's (inode), or it no longer matches the headers (size or Last-Modified). */
  | 'file-changed';

/**
 * The connection a reply goes out on, if the kernel may write to it: a plain TCP socket under
 * HTTP/1.x. A pipelined response has no `res.socket` until the responses before it finished, so
 * this is the request's connection, which the response gets when its turn comes.
 */
export function replyConnection(reply: FastifyReply): net.Socket | BypassReason {
  const res = reply.raw;
  const req = reply.request.raw;
  if (!(res instanceof http.ServerResponse) || req.httpVersionMajor !== 1) return 'http2';
  const socket = res.socket ?? req.socket;
  if (!(socket instanceof net.Socket) || socket.destroyed) return 'no-socket';
  if ((socket as { encrypted?: boolean }).encrypted) return 'tls';
  return socket;
}

/** The request/response level checks shared by byte and file bodies: null when the socket may be used. */
export function connectionBypass(reply: FastifyReply): BypassReason | null {
  const connection = replyConnection(reply);
  return typeof connection === 'string' ? connection : null;
}

/**
 * Calls `go` with the response's socket once it is this response's turn on the connection (at
 * once when it already is), or with null if the connection is gone or closes first.
 */
export function whenResponseHasSocket(res: http.ServerResponse, connection: net.Socket, go: (socket: net.Socket | null) => void): void {
  const socket = whenResponseSocket(res, connection);
  if (socket instanceof Promise) void socket.then((s) => go(s && !s.destroyed ? s : null));
  else go(socket);
}

/**
 * Byte bodies only: reasons the Sender could not beat Fastify's own write for this reply. Files
 * still go through the file engines (their copy engine beats a 16 KiB ReadStream anyway).
 */
export function noGainBypass(sender: Sender, socket: net.Socket): BypassReason | null {
  if (sender.backend === 'copy') return 'copy-backend';
  // The Sender's adaptive verdict: loopback peers, and peers or sockets the kernel was seen copying for.
  const plain = sender.plainReasonFor(socket);
  if (plain === 'loopback') return 'loopback';
  if (plain === 'copied') return 'copied';
  return null;
}

export function hasNoBody(method: string | undefined, statusCode: number): boolean {
  return method === 'HEAD' || statusCode < 200 || statusCode === 204 || statusCode === 304;
}

export function isEncoded(reply: FastifyReply): boolean {
  const encoding = reply.getHeader('content-encoding');
  return encoding !== undefined && String(encoding).toLowerCase() !== 'identity';
}

/** The Content-Length Fastify (or @fastify/static) put on the reply, or -1. */
export function declaredLength(reply: FastifyReply): number {
  const value = reply.getHeader('content-length');
  if (value === undefined || Array.isArray(value)) return -1;
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

/** Node internals of ServerResponse we read (stable for years, but not documented). */
interface ResponseInternals {
  _headerSent?: boolean;
  chunkedEncoding?: boolean;
}

/** True when no byte of this response reached the socket yet and the body is Content-Length framed. */
export function untouchedFraming(res: http.ServerResponse): boolean {
  const internals = res as unknown as ResponseInternals;
  return internals._headerSent === false && internals.chunkedEncoding !== true && !res.writableEnded && !res.destroyed;
}
