// When the kernel may write a response body straight to the connection, and waiting for the
// moment it may start. See shared/reference/node-fastify-facts.md.
import * as http from 'node:http';
import type * as net from 'node:net';

export { onSocketClose, whenResponseSocket } from '@zcsend/core';

/** Why a response body cannot go out of band (then it goes through `res.write`/`res.end`). */
export type IneligibleReason =
  | 'no-body'
  | 'headers-sent'
  | 'http2'
  | 'tls'
  | 'no-socket'
  | 'strict-content-length'
  | 'transfer-encoding'
  | 'socket-closed';

/** True for responses that carry no body whatever is written: HEAD, 1xx, 204, 304. */
export function isBodyless(method: string | undefined, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
}

/**
 * Whether `res` is an HTTP/1.x response on a plain TCP socket whose framing we control (Content-Length,
 * headers not sent yet). Independent of the Sender's backend and of the body size.
 */
export function outOfBandIneligibility(res: http.ServerResponse): IneligibleReason | null {
  const req = res.req as http.IncomingMessage | undefined;
  if (!(res instanceof http.ServerResponse) || !req || req.httpVersionMajor !== 1) return 'http2';
  if (isBodyless(req.method, res.statusCode)) return 'no-body';
  if (res.headersSent) return 'headers-sent';
  if (res.strictContentLength) return 'strict-content-length';
  if (res.hasHeader('transfer-encoding')) return 'transfer-encoding';
  const socket = res.socket as (net.Socket & { encrypted?: boolean }) | null;
  if (!socket) return 'no-socket';
  if (socket.encrypted) return 'tls';
  if (socket.destroyed || !socket.writable) return 'socket-closed';
  return null;
}

interface StreamHandle {
  writeQueueSize?: number;
}

/** True when libuv holds no bytes for the socket, so a kernel send now cannot overtake them. */
export function libuvIdle(socket: net.Socket): boolean {
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  return socket.writableLength === 0 && (handle?.writeQueueSize ?? 0) === 0;
}

/**
 * Resolves once libuv has written everything queued on the socket (headers included). A write
 * callback, not 'drain': 'drain' only follows a write() that returned false.
 */
export function whenLibuvIdle(socket: net.Socket): Promise<void> | null {
  if (libuvIdle(socket)) return null;
  return new Promise((resolve, reject) => {
    socket.write(EMPTY, (err) => (err ? reject(err) : resolve()));
  });
}

const EMPTY = Buffer.alloc(0);
