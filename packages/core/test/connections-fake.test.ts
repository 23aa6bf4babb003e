// The driven connection's state machine against a fake ring: the test plays the kernel (chunks
// into provided buffers, a dry pool, an early end, a receive without a buffer, cancels, short
// writes) and checks what the connection queues, recycles and reports. Runs in both modes.
import * as net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionDriver, Sender, violationChannel, type ConnectionHandlers, type ZcSendError } from '../src/index.js';
import { FakeRing, type FakeRingOptions, type FakeSqe } from '../src/testing.js';

const F_MORE = 2;
const ECANCELED = 125;
const ECONNRESET = 104;
const ENOBUFS = 105;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanups.splice(0)) fn();
});

async function pausedSocket(): Promise<net.Socket> {
  const listener = net.createServer({ pauseOnConnect: true });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  const [server] = (await once(listener, 'connection')) as [net.Socket];
  server.on('error', () => {});
  listener.close();
  cleanups.push(() => {
    client.destroy();
    server.destroy();
  });
  return server;
}

async function setup(options: { fake?: FakeRingOptions; buffers?: number } = {}) {
  const { factory, ring } = FakeRing.factory(options.fake);
  const sender = new Sender({ ring: factory });
  const driver = new ConnectionDriver({ sender, buffers: options.buffers ?? 4, bufferSize: 16 });
  const socket = await pausedSocket();
  const chunks: string[] = [];
  const events: string[] = [];
  const errors: ZcSendError[] = [];
  const handlers: ConnectionHandlers = {
    onData: (chunk) => chunks.push(chunk.toString()),
    onEnd: () => events.push('end'),
    onError: (err) => errors.push(err),
  };
  const conn = driver.drive(socket, handlers);
  const fake = ring();
  return { sender, driver, socket, conn, fake, chunks, events, errors };
}

function receives(fake: FakeRing): FakeSqe[] {
  return fake.submitted('recvMultishot');
}

function group(fake: FakeRing): number {
  return receives(fake)[0]!.group!;
}

describe('driven connection state machine (fake ring)', () => {
  it('arms one receive, delivers chunks and recycles each buffer once', async () => {
    const { fake, conn, chunks } = await setup();
    expect(conn).not.toBeNull();
    const [recv] = receives(fake);
    expect(recv).toMatchObject({ op: 'recvMultishot' });
    for (const word of ['GET / ', 'HTTP/1.1\r\n', '\r\n']) fake.received(recv!.userData, group(fake), Buffer.from(word));
    fake.flush();
    expect(chunks).toEqual(['GET / ', 'HTTP/1.1\r\n', '\r\n']);
    expect(fake.bufRings.get(group(fake))!.free).toHaveLength(4); // all back
    expect(receives(fake)).toHaveLength(1); // still the same receive
  });

  it('a dry pool (-ENOBUFS) and an early end (data without F_MORE) both re-arm', async () => {
    const { fake, driver, chunks } = await setup({ buffers: 2 });
    const g = group(fake);
    const first = receives(fake)[0]!.userData;
    fake.received(first, g, Buffer.from('a'));
    fake.received(first, g, Buffer.from('b'));
    expect(fake.received(first, g, Buffer.from('c'))).toBe(-1); // no buffer: -ENOBUFS ends it
    fake.flush();
    expect(chunks).toEqual(['a', 'b']);
    expect(receives(fake)).toHaveLength(2);
    const second = receives(fake)[1]!.userData;
    fake.received(second, g, Buffer.from('c'), false);
    fake.flush();
    expect(chunks).toEqual(['a', 'b', 'c']);
    expect(receives(fake)).toHaveLength(3);
    expect(driver.stats().rearms).toBe(2);
  });

  it('FIN: onEnd once, no re-arm', async () => {
    const { fake, events } = await setup();
    fake.cqe(receives(fake)[0]!.userData, 0, 0).flush();
    expect(events).toEqual(['end']);
    expect(receives(fake)).toHaveLength(1);
  });

  it('a receive CQE that names no buffer is a protocol violation: socket destroyed, error reported', async () => {
    const { fake, socket, errors } = await setup();
    const seen: unknown[] = [];
    const listener = (msg: unknown) => seen.push(msg);
    violationChannel.subscribe(listener);
    cleanups.push(() => violationChannel.unsubscribe(listener));
    fake.cqe(receives(fake)[0]!.userData, 5, F_MORE).flush();
    expect(errors.map((e) => e.code)).toEqual(['ZCSEND_ERR_PROTOCOL']);
    expect(socket.destroyed).toBe(true);
    expect(seen).toEqual([expect.objectContaining({ kind: 'receive-without-buffer' })]);
  });

  it('pause cancels, resume re-arms; a cancel it did not ask for (Sender.destroy) fails the connection', async () => {
    const { fake, conn, errors, socket } = await setup();
    const first = receives(fake)[0]!.userData;
    conn!.pause();
    expect(fake.submitted('cancel').map((s) => s.userData)).toEqual([first]);
    fake.cqe(first, -ECANCELED, 0).flush();
    expect(receives(fake)).toHaveLength(1);
    conn!.resume();
    expect(receives(fake)).toHaveLength(2);
    fake.cqe(receives(fake)[1]!.userData, -ECANCELED, 0).flush();
    expect(errors.map((e) => [e.code, e.errno])).toEqual([['ZCSEND_ERR_RECV_FAILED', ECANCELED]]);
    expect(socket.destroyed).toBe(true);
  });

  it('Sender.destroy() ends a connection whose receive was ending anyway: nothing is armed after it', async () => {
    // The receive's last CQE (a dry pool, or a chunk without F_MORE) is in the CQ when destroy()
    // cancels: the cancel finds nothing, and the connection must not arm a receive nobody cancels.
    for (const ending of ['ENOBUFS', 'early end'] as const) {
      const { fake, sender, socket, errors } = await setup({ buffers: 1 });
      const recv = receives(fake)[0]!;
      fake.received(recv.userData, recv.group!, Buffer.from('a'), ending !== 'early end');
      if (ending === 'ENOBUFS') expect(fake.received(recv.userData, recv.group!, Buffer.from('b'))).toBe(-1);
      let settled = false;
      const destroyed = sender.destroy().then(() => (settled = true));
      fake.flush();
      fake.cancelDone(recv.userData, -2).flush(); // ENOENT: it had ended
      expect(receives(fake), ending).toHaveLength(1);
      expect(socket.destroyed, ending).toBe(true);
      expect(errors.map((e) => e.code), ending).toEqual(['ZCSEND_ERR_SENDER_CLOSED']);
      await Promise.race([destroyed, new Promise((resolve) => setTimeout(resolve, 200))]);
      expect(settled, `${ending}: destroy() resolved`).toBe(true);
    }
  });

  it('a peer reset fails the connection with the errno', async () => {
    const { fake, errors, driver } = await setup();
    fake.cqe(receives(fake)[0]!.userData, -ECONNRESET, 0).flush();
    expect(errors.map((e) => [e.code, e.errno])).toEqual([['ZCSEND_ERR_RECV_FAILED', ECONNRESET]]);
    expect(driver.stats()).toMatchObject({ failures: 1, active: 0 });
  });

  it('writes go one at a time with MSG_WAITALL, in order; a short one destroys the socket', async () => {
    const { fake, conn, socket, errors } = await setup();
    conn!.write(Buffer.from('one'));
    conn!.write(Buffer.from('two'));
    let sends = fake.submitted('send');
    expect(sends.map((s) => Buffer.from(s.buf!).toString())).toEqual(['one']);
    expect(sends[0]!.msgFlags & 0x100).toBe(0x100);
    fake.first(sends[0]!.userData, 3, false).flush();
    sends = fake.submitted('send');
    expect(sends.map((s) => Buffer.from(s.buf!).toString())).toEqual(['one', 'two']);
    fake.first(sends[1]!.userData, 1, false).flush();
    expect(errors.map((e) => e.code)).toEqual(['ZCSEND_ERR_SEND_FAILED']);
    expect(socket.destroyed).toBe(true);
  });

  it('a failed write calls back whenWritten waiters with the socket already destroyed (not writable-looking)', async () => {
    const { fake, conn, socket, errors } = await setup();
    conn!.write(Buffer.alloc(20_000));
    const seen: boolean[] = [];
    conn!.whenWritten(() => {
      seen.push(socket.destroyed);
      // A waiter that writes more at once (as a server answering the next request does) gets refused.
      expect(conn!.write(Buffer.from('more'))).toBe(false);
    });
    fake.first(fake.submitted('send')[0]!.userData, -ECONNRESET, false).flush();
    expect(seen).toEqual([true]);
    expect(errors.map((e) => e.code)).toEqual(['ZCSEND_ERR_SEND_FAILED']);
  });

  it('release waits for the receive to end and the writes to finish; chunks before the end still arrive', async () => {
    const { fake, conn, chunks, driver } = await setup();
    const recv = receives(fake)[0]!.userData;
    conn!.write(Buffer.from('reply'));
    let released = false;
    conn!.release(() => (released = true));
    expect(fake.submitted('cancel').map((s) => s.userData)).toEqual([recv]);
    fake.received(recv, group(fake), Buffer.from('late'));
    fake.cqe(recv, -ECANCELED, 0).flush();
    expect(chunks).toEqual(['late']);
    expect(released).toBe(false); // the write is still out
    fake.first(fake.submitted('send')[0]!.userData, 5, false).flush();
    expect(released).toBe(true);
    expect(driver.stats()).toMatchObject({ released: 1, active: 0, failures: 0 });
    expect(conn!.write(Buffer.from('x'))).toBe(false); // the socket is libuv's again
  });

  it('close cancels the armed receive and the write in flight; the connection is forgotten when both end', async () => {
    const { fake, conn, socket, driver } = await setup();
    const recv = receives(fake)[0]!.userData;
    conn!.write(Buffer.from('abc'));
    const send = fake.submitted('send')[0]!.userData;
    socket.destroy();
    await once(socket, 'close');
    expect(fake.submitted('cancel').map((s) => s.userData).sort()).toEqual([recv, send].sort());
    expect(driver.stats().active).toBe(1);
    fake.cqe(recv, -ECANCELED, 0).first(send, -ECANCELED, false).flush();
    expect(driver.stats().active).toBe(0);
  });

  it('a submit retried on a later turn never carries an SQE naming the fd of a socket closed meanwhile', async () => {
    // The number may already be a new connection's: that client would get these bytes. Whether
    // the retry comes from the link's timer or from the cancels the socket's 'close' submits.
    for (const busyAtClose of [true, false]) {
      const { fake, conn, socket, sender } = await setup();
      fake.options.submitResult = -16; // EBUSY: the SQEs stay in the SQ, the link tries again later
      conn!.write(Buffer.from('reply'));
      socket.destroy(); // libuv closes the fd now
      if (!busyAtClose) fake.options.submitResult = undefined;
      await once(socket, 'close');
      fake.options.submitResult = undefined;
      await new Promise((resolve) => setTimeout(resolve, 20)); // the link's retry
      expect(fake.submitted('send'), `busy at close: ${busyAtClose}`).toEqual([]);
      // Given up instead: closing the ring discards what it never submitted.
      expect(fake.closed).toBe(true);
      expect(sender.backend).toBe('copy');
    }
  });

  it('close() unregisters the receive pool once the last connection is gone, and drives no new socket', async () => {
    const { fake, driver, socket } = await setup();
    const recv = receives(fake)[0]!.userData;
    driver.close();
    expect(fake.bufRings.size).toBe(1); // a receive is still armed on it
    expect(driver.drive(await pausedSocket(), { onData() {}, onEnd() {}, onError() {} })).toBeNull();
    socket.destroy();
    await once(socket, 'close');
    expect(fake.bufRings.size).toBe(1); // cancelled, not yet ended
    fake.cqe(recv, -ECANCELED, 0).flush();
    expect(fake.bufRings.size).toBe(0);
    expect(driver.stats()).toMatchObject({ active: 0, poolBytes: 0, unavailableReason: 'the driver is closed' });
  });

  it('declines (null, with the reason) when the ring has no provided buffers', async () => {
    const { conn, driver } = await setup({ fake: { failBufRingWith: -22 } });
    expect(conn).toBeNull();
    expect(driver.unavailableReason).toMatch(/EINVAL/);
  });

  it('ENOBUFS is not an error even when it ends the first receive', async () => {
    const { fake, errors } = await setup();
    fake.cqe(receives(fake)[0]!.userData, -ENOBUFS, 0).flush();
    expect(errors).toEqual([]);
    expect(receives(fake)).toHaveLength(2);
  });
});
