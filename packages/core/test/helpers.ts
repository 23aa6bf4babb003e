import * as net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { MODE, REQUIRE_URING } from '@zcsend/test-utils';
import { probe } from '../src/index.js';

export { MODE, REQUIRE_URING, evictFromPageCache, randomBytes, sha256, waitFor } from '@zcsend/test-utils';
export const machine = probe();
/** io_uring tests run when the ring is usable, and also when it is required (then they fail). */
export const URING = MODE === 'uring' && (machine.available || REQUIRE_URING);
if (MODE === 'uring' && !URING) console.warn(`[zcsend] io_uring tests skipped: ${machine.reason}`);

export interface TcpPair {
  /** Server-side accepted socket: the one we send on. */
  sender: net.Socket;
  /** Client socket: the receiver. */
  receiver: net.Socket;
  close(): void;
}

export async function tcpPair(host = '127.0.0.1'): Promise<TcpPair> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const receiver = net.connect(port, host);
  const [sender] = (await once(server, 'connection')) as [net.Socket];
  await once(receiver, 'connect').catch(() => {});
  server.close();
  sender.on('error', () => {});
  receiver.on('error', () => {});
  return {
    sender,
    receiver,
    close() {
      sender.destroy();
      receiver.destroy();
    },
  };
}

/** Reads until `expected` bytes or end, hashing as it goes. */
export function receive(socket: net.Socket, expected: number): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    const done = () => {
      socket.off('data', onData);
      resolve({ bytes, sha256: hash.digest('hex') });
    };
    const onData = (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      if (bytes >= expected) done();
    };
    socket.on('data', onData);
    socket.once('end', () => bytes < expected && done());
    socket.once('close', () => bytes < expected && done());
    socket.once('error', reject);
  });
}

