import type * as net from 'node:net';
import type * as dgram from 'node:dgram';

/** libuv's handle as Node exposes it on net.Socket (`_handle`); internal, so read defensively. */
interface StreamHandle {
  fd?: number;
  writeQueueSize?: number;
}

export type SocketEligibility = { fd: number; reason: null } | { fd: -1; reason: FallbackReason };

export type FallbackReason =
  | 'disabled'
  | 'unavailable'
  | 'tls'
  | 'no-fd'
  | 'below-threshold'
  | 'loopback'
  | 'copied'
  | 'memlock'
  | 'unsupported'
  | 'not-a-socket';

function handleOf(socket: net.Socket): StreamHandle | null {
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  return handle ?? null;
}

/**
 * Whether the kernel may write straight to this socket's fd. TLS sockets have an fd too (under
 * TLSWrap) and raw bytes there would corrupt the stream, so they are never eligible.
 */
export function socketEligibility(socket: net.Socket): SocketEligibility {
  if ((socket as { encrypted?: boolean }).encrypted) return { fd: -1, reason: 'tls' };
  const fd = handleOf(socket)?.fd;
  if (typeof fd !== 'number' || fd <= 0) return { fd: -1, reason: 'no-fd' };
  return { fd, reason: null };
}

/** The fd this socket has right now, or -1 once libuv let it go. */
export function currentFd(socket: net.Socket): number {
  if (socket.destroyed) return -1;
  const fd = handleOf(socket)?.fd;
  return typeof fd === 'number' && fd > 0 ? fd : -1;
}

/** True when libuv holds no bytes for the socket, so a kernel send now cannot overtake them. */
export function libuvIdle(socket: net.Socket): boolean {
  const handle = handleOf(socket);
  return socket.writableLength === 0 && (handle?.writeQueueSize ?? 0) === 0;
}

/** Out-of-band sends do not refresh Node's idle timer: do it on progress (net.Socket#_unrefTimer). */
export function refreshIdleTimer(socket: net.Socket): void {
  (socket as unknown as { _unrefTimer?: () => void })._unrefTimer?.();
}

const LOOPBACK_V4 = /^(?:::ffff:)?127\./i;

export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || LOOPBACK_V4.test(address);
}

/** dgram keeps its UDP handle behind an internal symbol; find it by description. */
export function dgramFd(socket: dgram.Socket): number {
  const stateSymbol = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = stateSymbol ? (socket as unknown as Record<symbol, { handle?: { fd?: number } | null }>)[stateSymbol] : undefined;
  const fd = state?.handle?.fd;
  return typeof fd === 'number' && fd > 0 ? fd : -1;
}
