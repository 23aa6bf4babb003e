// Slow HTTP clients: one that reads a response at a set pace (`bytes` from the socket, then nothing
// for `everyMs`), one that stops reading after the first bytes. Pausing the socket stops libuv
// reading, so the kernel's receive window closes.
import * as net from 'node:net';
import { once } from 'node:events';

export interface PacedResult {
  status: number;
  body: Buffer;
  /** null when the whole body (Content-Length) arrived; else why it stopped. */
  error: string | null;
  ms: number;
}

export function pacedGet(
  port: number,
  target: string,
  pace: { bytes: number; everyMs: number; giveUpMs?: number },
  host = '127.0.0.1',
): Promise<PacedResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let head: Buffer | null = Buffer.alloc(0);
    let status = 0;
    let length = -1;
    const chunks: Buffer[] = [];
    let got = 0;
    let takenThisTurn = 0;
    let done = false;
    const finish = (error: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ status, body: Buffer.concat(chunks), error, ms: performance.now() - started });
    };
    const giveUp = setTimeout(() => finish('gave up'), pace.giveUpMs ?? 20_000);
    socket.on('error', (err) => finish(err.message));
    socket.on('close', () => finish(got === length ? null : `closed after ${got} body bytes`));
    socket.on('data', (data: Buffer) => {
      if (head !== null) {
        head = Buffer.concat([head, data]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
        length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? -1);
        data = head.subarray(end + 4);
        head = null;
      }
      chunks.push(data);
      got += data.length;
      takenThisTurn += data.length;
      if (got >= length) return finish(got === length ? null : `${got - length} bytes past Content-Length`);
      if (takenThisTurn >= pace.bytes) {
        takenThisTurn = 0;
        socket.pause();
        setTimeout(() => socket.resume(), pace.everyMs);
      }
    });
    socket.write(`GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`);
  });
}

/** Sends the request, reads the first bytes, then reads nothing more. */
export async function stalledClient(port: number, target: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(`GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`);
  await once(socket, 'data');
  socket.pause();
  return socket;
}
