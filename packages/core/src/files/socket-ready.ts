import type * as net from 'node:net';
import { ZcSendError } from '../errors.js';
import { libuvIdle } from '../sockets.js';

const EMPTY = Buffer.alloc(0);

export function socketClosed(cause?: unknown): ZcSendError {
  return new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket closed before the file was sent', { cause });
}

/** Bytes libuv still holds (the headers) must reach the wire before the kernel sends the body. */
export async function untilLibuvIdle(socket: net.Socket): Promise<void> {
  while (!libuvIdle(socket)) {
    if (socket.destroyed) throw socketClosed();
    await new Promise<void>((resolve, reject) => {
      socket.write(EMPTY, (err) => (err ? reject(socketClosed(err)) : resolve()));
    });
  }
}
