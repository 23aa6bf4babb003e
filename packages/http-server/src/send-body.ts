// sendBody: a Buffer response body through the core Sender, with node:http keeping keep-alive.
import type * as http from 'node:http';
import { getSender, ZcSendError, type Sender } from '@zcsend/core';
import { isBodyless, onSocketClose, outOfBandIneligibility, type IneligibleReason } from './response-socket.js';

export interface SendBodyOptions {
  /** Sender to use. Default: this thread's shared Sender (`getSender()`). */
  sender?: Sender;
  /** Bodies smaller than this are written by node:http. Default: the Sender's threshold (16 KiB). */
  threshold?: number;
}

/** Why a body went through `res.end(data)`: the response reasons plus the Sender-level ones. */
export type PlainBodyReason = IneligibleReason | 'copy-backend' | 'below-threshold';

/**
 * Which path `sendBody` would take for this response: null for out of band (the Sender), else the
 * reason for a plain write. Exposed for adapters and tests.
 */
export function plainBodyReason(res: http.ServerResponse, byteLength: number, sender: Sender, threshold = sender.threshold): PlainBodyReason | null {
  const reason = outOfBandIneligibility(res);
  if (reason) return reason;
  if (sender.backend === 'copy') return 'copy-backend';
  if (byteLength < threshold) return 'below-threshold';
  return null;
}

/**
 * Sets Content-Length, flushes the headers, sends `data` through the Sender (which waits until libuv
 * holds nothing for the socket), then ends the response with keep-alive intact. Resolves once every
 * byte was accepted by the kernel (*sent*); `data` must not be modified until the Sender releases it,
 * which for a Buffer you drop after this call is automatic. Responses the kernel may not write to
 * directly get the same bytes through `res.end(data)`. Rejects with a `ZcSendError` when the client
 * went away first (the connection is destroyed if the body was cut short).
 */
export function sendBody(res: http.ServerResponse, data: Uint8Array, opts: SendBodyOptions = {}): Promise<void> {
  if (!(data instanceof Uint8Array)) {
    return Promise.reject(new ZcSendError('ZCSEND_ERR_INVALID_ARG', 'data must be a Buffer or Uint8Array'));
  }
  if (res.writableEnded) {
    return Promise.reject(new ZcSendError('ZCSEND_ERR_INVALID_ARG', 'the response has already ended'));
  }
  const sender = opts.sender ?? getSender();
  const threshold = opts.threshold ?? sender.threshold;
  if (plainBodyReason(res, data.byteLength, sender, threshold) !== null) return endPlain(res, data);

  const socket = res.socket!;
  res.setHeader('content-length', data.byteLength);
  res.flushHeaders();
  return sender.send(socket, data, { threshold }).sent.then(
    () => {
      res.end();
    },
    (err: unknown) => {
      // Headers promised Content-Length bytes that will not all come: the connection is unusable.
      if (!socket.destroyed) socket.destroy();
      throw err;
    },
  );
}

/** The same bytes on the wire through node:http; resolves on 'finish' (everything handed to the OS). */
function endPlain(res: http.ServerResponse, data: Uint8Array): Promise<void> {
  const req = res.req as http.IncomingMessage | undefined;
  if (!res.headersSent) {
    // HEAD still announces the GET length; 204/304 announce nothing.
    if (!isBodyless(req?.method, res.statusCode) || req?.method === 'HEAD') res.setHeader('content-length', data.byteLength);
  }
  const connection = res.socket ?? req?.socket ?? null;
  if (connection?.destroyed) {
    return Promise.reject(new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the connection is closed'));
  }
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      res.off('finish', onFinish);
      res.off('close', onClose);
      unsubscribe();
    };
    const onFinish = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      if (res.writableFinished) return onFinish();
      cleanup();
      reject(new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the connection closed before the response was sent'));
    };
    res.once('finish', onFinish);
    res.once('close', onClose);
    const unsubscribe = connection ? onSocketClose(connection, onClose) : () => {};
    res.end(data);
  });
}
