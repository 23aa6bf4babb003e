// The moment a node:http response may start its body on the connection. Both adapters need it:
// a pipelined response waits in Node's queue with `res.socket === null` until the responses
// before it finished, and gets no event of its own if the connection closes meanwhile.
import type * as http from 'node:http';
import type * as net from 'node:net';

const closeCallbacks = new WeakMap<net.Socket, Set<() => void>>();

/**
 * Runs `callback` when `socket` closes; returns the unsubscribe function. One 'close' listener per
 * socket however many pipelined responses wait on it (no MaxListeners warnings, no per-request listener).
 */
export function onSocketClose(socket: net.Socket, callback: () => void): () => void {
  let callbacks = closeCallbacks.get(socket);
  if (!callbacks) {
    const set = new Set<() => void>();
    callbacks = set;
    closeCallbacks.set(socket, set);
    socket.once('close', () => {
      closeCallbacks.delete(socket);
      for (const cb of set) cb();
    });
  }
  const set = callbacks;
  set.add(callback);
  return () => {
    set.delete(callback);
  };
}

/**
 * The response's socket: at once when it has one, else a promise of it for when its turn comes on
 * `connection` (default: its request's), or null when that connection is gone or closes first.
 */
export function whenResponseSocket(
  res: http.ServerResponse,
  connection: net.Socket | null | undefined = res.req?.socket,
): Promise<net.Socket | null> | net.Socket | null {
  if (res.socket) return res.socket;
  if (!connection || connection.destroyed) return null;
  return new Promise((resolve) => {
    const onSocket = (socket: net.Socket) => {
      unsubscribe();
      resolve(socket);
    };
    const unsubscribe = onSocketClose(connection, () => {
      res.off('socket', onSocket);
      resolve(null);
    });
    res.once('socket', onSocket);
  });
}
