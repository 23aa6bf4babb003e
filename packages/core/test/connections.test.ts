// ConnectionDriver on real loopback sockets: bytes a peer sends reach onData in order through a
// small pool of provided buffers, writes reach the peer in order, FIN and resets come through,
// release() hands the socket back to libuv with nothing lost, and closing a driven socket ends
// the ring's hold on it at once (the peer sees the close; nothing is left in the op table).
// On the copy backend drive() declines and leaves the socket as it was.
import * as net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionDriver, Sender, ZcSendError, type ConnectionHandlers } from '../src/index.js';
import { MODE, URING, randomBytes, sha256, waitFor } from './helpers.js';

interface Pair {
  /** The accepted socket, paused (never read by libuv). */
  server: net.Socket;
  client: net.Socket;
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A listener that accepts paused, as a driven server must. */
async function pausedListener(): Promise<{ port: number; accept: () => Promise<Pair> }> {
  const listener = net.createServer({ pauseOnConnect: true });
  const queue: net.Socket[] = [];
  const waiting: Array<(s: net.Socket) => void> = [];
  listener.on('connection', (s: net.Socket) => {
    s.on('error', () => {});
    const w = waiting.shift();
    if (w) w(s);
    else queue.push(s);
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  cleanups.push(() => new Promise<void>((resolve) => listener.close(() => resolve())));
  const { port } = listener.address() as net.AddressInfo;
  return {
    port,
    async accept() {
      const client = net.connect(port, '127.0.0.1');
      client.on('error', () => {});
      const server = queue.shift() ?? (await new Promise<net.Socket>((resolve) => waiting.push(resolve)));
      await once(client, 'connect').catch(() => {});
      cleanups.push(() => {
        client.destroy();
        server.destroy();
      });
      return { server, client };
    },
  };
}

/** Handlers that record everything (chunks copied: the driver reuses their memory). */
function recorder() {
  const chunks: Buffer[] = [];
  const events: string[] = [];
  const errors: ZcSendError[] = [];
  const handlers: ConnectionHandlers = {
    onData: (chunk) => chunks.push(Buffer.from(chunk)),
    onEnd: () => events.push('end'),
    onError: (err) => errors.push(err),
  };
  return { chunks, events, errors, handlers, bytes: () => Buffer.concat(chunks) };
}

function readAll(socket: net.Socket, expected: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${total} of ${expected} bytes`)), 10_000);
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      total += d.length;
      if (total >= expected) {
        clearTimeout(timer);
        resolve(Buffer.concat(parts));
      }
    });
  });
}

function ownSender(): Sender {
  const sender = new Sender({ backend: URING ? 'io_uring' : 'auto' });
  cleanups.push(() => sender.destroy());
  return sender;
}

describe.skipIf(MODE !== 'copy')('ConnectionDriver on the copy backend', () => {
  it('declines every socket, says why, and leaves the socket to libuv', async () => {
    const { accept } = await pausedListener();
    const driver = new ConnectionDriver({ sender: ownSender() });
    const { server, client } = await accept();
    const rec = recorder();
    expect(driver.drive(server, rec.handlers)).toBeNull();
    expect(driver.unavailableReason).toMatch(/ZCSEND_DISABLE|copy/);
    expect(driver.stats()).toMatchObject({ driven: 0, poolBytes: 0 });
    // Untouched: libuv reads it once resumed.
    const got = readAll(server, 5);
    server.resume();
    client.write('hello');
    expect((await got).toString()).toBe('hello');
  });
});

describe.skipIf(!URING)('ConnectionDriver on io_uring', () => {
  it('receives in order through a pool far smaller than the traffic, re-arming when it runs dry', async () => {
    const { accept } = await pausedListener();
    const sender = ownSender();
    const driver = new ConnectionDriver({ sender, buffers: 4, bufferSize: 1024 });
    const { server, client } = await accept();
    const rec = recorder();
    const conn = driver.drive(server, rec.handlers);
    expect(conn).not.toBeNull();
    const body = randomBytes(3 * 1024 * 1024);
    client.write(body);
    await waitFor(() => rec.chunks.reduce((n, c) => n + c.length, 0) >= body.length, 10_000, 'every byte');
    expect(sha256(rec.bytes())).toBe(sha256(body));
    const stats = driver.stats();
    expect(stats).toMatchObject({ driven: 1, active: 1, bytesReceived: body.length, poolBytes: 4096, failures: 0 });
    expect(stats.rearms).toBeGreaterThan(0);
    expect(rec.errors).toEqual([]);
  });

  it('writes reach the peer in order; write() asks to wait past the high-water mark and whenWritten calls back', async () => {
    const { accept } = await pausedListener();
    const driver = new ConnectionDriver({ sender: ownSender() });
    const { server, client } = await accept();
    const conn = driver.drive(server, recorder().handlers)!;
    const parts = Array.from({ length: 40 }, (_, i) => randomBytes(1000 + i * 997));
    const total = parts.reduce((n, p) => n + p.length, 0);
    const got = readAll(client, total);
    const answers = parts.map((p) => conn.write(p));
    expect(answers[0]).toBe(true);
    expect(answers.at(-1)).toBe(false); // ~800 KB queued
    expect(conn.writableLength).toBeGreaterThan(16 * 1024);
    const written = new Promise<void>((resolve) => conn.whenWritten(resolve));
    expect(sha256(await got)).toBe(sha256(Buffer.concat(parts)));
    await written;
    expect(conn.writableLength).toBe(0);
    expect(driver.stats()).toMatchObject({ writes: parts.length, bytesWritten: total });
  });

  it('reports the peer FIN once; writing goes on, and end() sends the FIN after every queued byte', async () => {
    const { accept } = await pausedListener();
    const driver = new ConnectionDriver({ sender: ownSender() });
    const { server, client } = await accept();
    const rec = recorder();
    const conn = driver.drive(server, rec.handlers)!;
    client.end('last words');
    await waitFor(() => rec.events.length > 0, 5000, 'the FIN');
    expect(rec.events).toEqual(['end']);
    expect(rec.bytes().toString()).toBe('last words');
    const reply = randomBytes(300_000);
    const got = readAll(client, reply.length);
    const ended = once(client, 'end');
    conn.write(reply);
    conn.end();
    expect(sha256(await got)).toBe(sha256(reply));
    await ended;
    server.destroy();
    await waitFor(() => driver.stats().active === 0, 5000, 'the connection to be forgotten');
  });

  it('closes the socket once both sides have ended (libuv never reads the FIN, so Node would not), either order', async () => {
    const { accept } = await pausedListener();
    const driver = new ConnectionDriver({ sender: ownSender() });
    // The peer ends first, then end() (after a reply larger than the socket takes at once).
    const first = await accept();
    const reply = randomBytes(4 * 1024 * 1024);
    const got = readAll(first.client, reply.length);
    const conn = driver.drive(first.server, {
      ...recorder().handlers,
      onEnd: () => {
        conn.write(reply);
        conn.end();
      },
    })!;
    first.client.end();
    expect(sha256(await got)).toBe(sha256(reply));
    await waitFor(() => first.server.destroyed, 5000, 'the socket to close after both FINs');
    // end() first, then the peer's FIN.
    const second = await accept();
    const rec = recorder();
    const conn2 = driver.drive(second.server, rec.handlers)!;
    const ended = once(second.client, 'end');
    conn2.end();
    await ended;
    expect(second.server.destroyed).toBe(false); // half-closed: the peer may still send
    second.client.end();
    await waitFor(() => second.server.destroyed, 5000, 'the socket to close at the peer\'s FIN');
    expect(rec.events).toEqual(['end']);
    await waitFor(() => driver.stats().active === 0, 5000, 'both connections to be forgotten');
  });

  it('release() delivers what was received, then libuv reads the rest: nothing lost or reordered', async () => {
    const { accept } = await pausedListener();
    const sender = ownSender();
    const driver = new ConnectionDriver({ sender });
    const { server, client } = await accept();
    const rec = recorder();
    const conn = driver.drive(server, rec.handlers)!;
    const first = randomBytes(10_000);
    client.write(first);
    await waitFor(() => rec.chunks.reduce((n, c) => n + c.length, 0) >= first.length, 5000, 'the first bytes');
    const reply = randomBytes(50_000);
    const replied = readAll(client, reply.length);
    conn.write(reply);
    await new Promise<void>((resolve) => conn.release(resolve));
    // The ring holds nothing for the socket now; libuv takes over reading and writing.
    expect(sender.stats().inFlightOps).toBe(0);
    expect(driver.stats()).toMatchObject({ active: 0, released: 1 });
    expect(sha256(await replied)).toBe(sha256(reply));
    const second = randomBytes(200_000);
    const got = readAll(server, second.length);
    server.resume();
    client.write(second);
    expect(sha256(await got)).toBe(sha256(second));
    expect(sha256(rec.bytes())).toBe(sha256(first));
    // Writes after the release go through libuv.
    const back = readAll(client, 3);
    server.write('end');
    expect((await back).toString()).toBe('end');
  });

  it('pause() stops receiving (TCP pushes back), resume() brings the rest in order', async () => {
    const { accept } = await pausedListener();
    const driver = new ConnectionDriver({ sender: ownSender() });
    const { server, client } = await accept();
    const rec = recorder();
    const conn = driver.drive(server, rec.handlers)!;
    conn.pause();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const body = randomBytes(8 * 1024 * 1024);
    const flushed = new Promise<void>((resolve) => client.write(body, () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const whilePaused = rec.chunks.reduce((n, c) => n + c.length, 0);
    expect(whilePaused).toBeLessThan(body.length); // the socket buffers fill; the client waits
    conn.resume();
    await flushed;
    await waitFor(() => rec.chunks.reduce((n, c) => n + c.length, 0) >= body.length, 10_000, 'the rest');
    expect(sha256(rec.bytes())).toBe(sha256(body));
    expect(driver.stats().pauses).toBe(1);
  });

  it('a destroyed socket is let go at once: the peer sees the end, nothing stays in the ring', async () => {
    const { accept } = await pausedListener();
    const sender = ownSender();
    const driver = new ConnectionDriver({ sender });
    const { server, client } = await accept();
    driver.drive(server, recorder().handlers);
    expect(sender.stats().inFlightOps).toBe(1); // the armed receive
    const ended = once(client, 'close');
    server.destroy();
    await ended;
    await waitFor(() => sender.stats().inFlightOps === 0, 5000, 'the receive to be cancelled');
    expect(driver.stats().active).toBe(0);
    await sender.close(); // drains: nothing left behind
  });

  it('a reset from the peer destroys the socket and reports ZCSEND_ERR_RECV_FAILED (ECONNRESET)', async () => {
    const { accept } = await pausedListener();
    const driver = new ConnectionDriver({ sender: ownSender() });
    const { server, client } = await accept();
    const rec = recorder();
    driver.drive(server, rec.handlers);
    const closed = once(server, 'close');
    client.resetAndDestroy();
    await closed;
    expect(rec.errors.map((e) => [e.code, e.errno])).toEqual([['ZCSEND_ERR_RECV_FAILED', 104]]);
    expect(driver.stats()).toMatchObject({ active: 0, failures: 1 });
  });

  it('bytes for a new connection that reuses a closed one\'s fd number reach only the new one', async () => {
    const { accept } = await pausedListener();
    const sender = ownSender();
    const driver = new ConnectionDriver({ sender });
    const a = await accept();
    const recA = recorder();
    driver.drive(a.server, recA.handlers);
    const fdA = (a.server as unknown as { _handle: { fd: number } })._handle.fd;
    a.server.destroy();
    await once(a.client, 'close');
    const b = await accept();
    const fdB = (b.server as unknown as { _handle: { fd: number } })._handle.fd;
    expect(fdB).toBe(fdA); // the number was reused
    const recB = recorder();
    const connB = driver.drive(b.server, recB.handlers)!;
    b.client.write('for b');
    await waitFor(() => recB.chunks.length > 0, 5000, 'b to receive');
    expect(recB.bytes().toString()).toBe('for b');
    expect(recA.chunks).toEqual([]);
    const got = readAll(b.client, 6);
    connB.write(Buffer.from('to b!!'));
    expect((await got).toString()).toBe('to b!!');
  });

  it('Sender.destroy() ends driven connections (sockets destroyed) and resolves', async () => {
    const { accept } = await pausedListener();
    const sender = new Sender({ backend: 'io_uring' });
    const driver = new ConnectionDriver({ sender });
    const { server } = await accept();
    const rec = recorder();
    driver.drive(server, rec.handlers);
    await sender.destroy();
    expect(server.destroyed).toBe(true);
    expect(rec.errors.map((e) => e.code)).toEqual(['ZCSEND_ERR_RECV_FAILED']);
  });

  it('refuses a socket libuv already reads (ZCSEND_ERR_INVALID_ARG), and options out of range', async () => {
    const listener = net.createServer();
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => listener.close(() => resolve())));
    const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
    const [server] = (await once(listener, 'connection')) as [net.Socket];
    cleanups.push(() => {
      client.destroy();
      server.destroy();
    });
    const driver = new ConnectionDriver({ sender: ownSender() });
    expect(() => driver.drive(server, recorder().handlers)).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_ARG' }));
    for (const bad of [{ buffers: 3 }, { buffers: 0 }, { bufferSize: 1000 }, { bufferSize: 2 ** 21 }]) {
      expect(() => new ConnectionDriver({ sender: ownSender(), ...bad })).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_OPTION' }));
    }
  });
});

