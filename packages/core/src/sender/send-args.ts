import * as net from 'node:net';
import * as dgram from 'node:dgram';
import { ZcSendError } from '../errors.js';

export function assertBytes(data: unknown): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', 'data must be a Buffer or Uint8Array');
  }
}

/** A raw socket fd given to send(): a positive integer. */
export function assertSocketFd(fd: number): void {
  if (!Number.isInteger(fd) || fd <= 0) {
    throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', `socket must be a net.Socket or a positive fd, got ${fd}`);
  }
}

export function assertNetSocket(socket: unknown): asserts socket is net.Socket {
  if (!(socket instanceof net.Socket)) {
    throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', 'socket must be a net.Socket or a positive fd');
  }
}

/** Checks sendTo()'s destination and socket; true when `socket` is a dgram.Socket (else a raw fd). */
export function checkDatagramArgs(socket: dgram.Socket | number, port: number, address: string): socket is dgram.Socket {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', `port must be an integer from 1 to 65535, got ${port}`);
  }
  if (typeof address !== 'string' || net.isIP(address) === 0) {
    throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', `address must be an IPv4 or IPv6 literal, got ${String(address)}`);
  }
  const isDgram = socket instanceof dgram.Socket;
  if (!isDgram && (typeof socket !== 'number' || !Number.isInteger(socket) || socket <= 0)) {
    throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', 'socket must be a dgram.Socket or a positive fd');
  }
  return isDgram;
}
