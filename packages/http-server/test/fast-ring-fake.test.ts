// The fast path over a fake ring: the test plays the kernel for the driven connections, to reach
// interleavings a real one rarely shows on loopback (a ring write still out while something else
// wants the socket). The sockets are real; the client's request bytes go to the fake ring only
// (libuv reads nothing the fake did not deliver), node:http's answers go out through libuv.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { once } from 'node:events';
import { Sender, violationChannel } from '@zcsend/core';
import { FakeRing } from '@zcsend/core/testing';
import { ResponseParser, makeTree, startServer, waitFor, type Tree } from './helpers.js';

const ECANCELED = 125;
const ECONNRESET = 104;

let tree: Tree;
beforeAll(() => {
  tree = makeTree();
});
afterAll(() => tree?.cleanup());

async function fakeServer(options: { timeoutMs?: number } = {}) {
  const { factory, ring } = FakeRing.factory();
  const sender = new Sender({ ring: factory });
  const s = await startServer({ root: tree.root, sender, ...options });
  const client = net.connect(s.port, '127.0.0.1');
  client.on('error', () => {});
  const received: Buffer[] = [];
  let ended = false;
  let closed = false;
  client.on('data', (chunk: Buffer) => received.push(chunk));
  client.on('end', () => (ended = true));
  client.on('close', () => (closed = true));
  await once(client, 'connect');
  const fake = ring();
  await waitFor(() => fake.submitted('recvMultishot').length === 1, 5_000, 'the receive');
  const recv = fake.submitted('recvMultishot')[0]!;
  return {
    s,
    sender,
    fake,
    client,
    received: () => Buffer.concat(received),
    ended: () => ended,
    closed: () => closed,
    /** The kernel receiving `text` on the connection (in chunks of a pool buffer at most). */
    deliver: (text: string) => {
      for (let at = 0; at < text.length; at += 4096) fake.received(recv.userData, recv.group!, Buffer.from(text.slice(at, at + 4096), 'latin1'));
      fake.flush();
    },
    recv,
  };
}

describe('fast path on a fake ring', () => {
  // [what follows the fast path's response, node:http's answers once it has the socket]
  const cases: Array<[string, string, Array<[number, string]>]> = [
    ['a request', 'POST /small.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n', [[405, 'close']]],
    ['the start of one', 'DELETE /small.txt HTTP/1.1\r\nHo', []], // nothing to answer: ended, as close() ends idle ones
  ];
  for (const [what, declined, answers] of cases) {
    it(`a shutdown during a hand-over (${what}) leaves the socket alone until the ring lets go; node:http then ends it`, async () => {
      const { s, sender, fake, client, received, ended, deliver, recv } = await fakeServer();
      let kernelDone = false;
      try {
        // A response the fast path writes through the ring, then bytes it hands to node:http.
        deliver('GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n' + declined);
        await waitFor(() => fake.submitted('send').length === 1 && fake.submitted('cancel').length === 1, 5_000, 'the write and the release');
        const send = fake.submitted('send')[0]!;
        expect(Buffer.from(send.buf!).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
        // The write is still out (its CQE not in) when the server starts shutting down.
        const closed = s.fileServer.close();
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(ended(), 'a FIN while the ring still writes would cut that response').toBe(false);
        fake.first(send.userData, send.length, false).cqe(recv.userData, -ECANCELED, 0).flush();
        kernelDone = true;
        await waitFor(() => ended(), 5_000, 'node:http to end the connection');
        const parser = new ResponseParser();
        parser.push(received());
        expect(parser.responses.map((r) => [r.status, r.headers.connection])).toEqual(answers);
        expect((await closed).forced).toBe(false);
      } finally {
        // Whatever the ring still owes (a failed run leaves the write and the receive out).
        if (!kernelDone) fake.first(fake.submitted('send')[0]?.userData ?? 0, 0, false).cqe(recv.userData, -ECANCELED, 0).flush();
        client.destroy();
        await s.close();
        await sender.destroy();
      }
    });
  }

  it('close() gives the receive pool back to the ring, which is the thread\'s and outlives the server', async () => {
    const { s, sender, fake, client, ended, recv } = await fakeServer();
    try {
      expect(fake.bufRings.size).toBe(1);
      fake.cqe(recv.userData, 0, 0).flush(); // the peer's FIN: the fast path ends the connection
      await waitFor(() => ended(), 5_000, 'the server to end the connection');
      await s.fileServer.close();
      expect(fake.bufRings.size).toBe(0);
      expect(s.fileServer.stats().http.fastPath.ring).toMatchObject({ active: 0, poolBytes: 0 });
    } finally {
      client.destroy();
      await s.close();
      await sender.destroy();
    }
  });

  it('a hand-over waiting on a write the peer never takes is bounded by timeoutMs (the stalled peer is reset)', async () => {
    const { s, sender, fake, client, closed, deliver, recv } = await fakeServer({ timeoutMs: 150 });
    try {
      deliver('GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\nDELETE /small.txt HTTP/1.1\r\nHost: t\r\n\r\n');
      await waitFor(() => fake.submitted('send').length === 1 && fake.submitted('cancel').length === 1, 5_000, 'the write and the release');
      fake.cqe(recv.userData, -ECANCELED, 0).flush(); // the receive has ended; the write never will
      // Judged like a stalled response: noted at the first timeout, reset at the second.
      await waitFor(() => closed(), 3_000, 'the stalled connection to be cut');
      expect(s.fileServer.stats().http.timeouts).toBe(1);
    } finally {
      const send = fake.submitted('send')[0];
      if (send) fake.first(send.userData, -ECANCELED, false).flush();
      client.destroy();
      await s.close();
      await sender.destroy();
    }
  });

  it('a write that fails under pipelined requests ends the connection: nothing more is answered, nothing is left behind', async () => {
    const { s, sender, fake, client, closed, deliver, recv } = await fakeServer();
    const violations: unknown[] = [];
    const onViolation = (message: unknown) => violations.push(message);
    violationChannel.subscribe(onViolation);
    let receiveDone = false;
    try {
      const request = 'GET /data.json HTTP/1.1\r\nHost: t\r\n\r\n';
      deliver(request); // the file is looked up once; its answer goes out
      await waitFor(() => fake.submitted('send').length === 1, 5_000, 'the first answer');
      fake.first(fake.submitted('send')[0]!.userData, fake.submitted('send')[0]!.length, false).flush();
      // More answers than the ring queue takes before the lane waits for it (16 KiB).
      deliver(request.repeat(400));
      const send = fake.submitted('send')[1]!;
      const answered = s.fileServer.stats().http.fastPath.responses;
      expect(answered).toBeLessThan(401);
      // The peer resets: the write in flight fails and the connection destroys the socket.
      fake.first(send.userData, -ECONNRESET, false).flush();
      expect(s.fileServer.stats().http.fastPath.responses, 'answers to a connection that had failed').toBe(answered);
      await waitFor(() => closed(), 5_000, 'the connection to close');
      fake.cqe(recv.userData, -ECANCELED, 0).flush(); // the receive, cancelled at the socket's close
      receiveDone = true;
      expect(violations).toEqual([]);
      expect(s.fileServer.stats().http.fastPath.ring).toMatchObject({ active: 0, failures: 1 });
    } finally {
      violationChannel.unsubscribe(onViolation);
      if (!receiveDone) fake.cqe(recv.userData, -ECANCELED, 0).flush();
      client.destroy();
      await s.close();
      await sender.destroy();
    }
  });
});
