// Connection-level behaviour: 64 pipelined keep-alive requests, clients aborting mid-body, stalled
// clients cut off by the socket timeout, malformed requests; nothing leaked afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { once } from 'node:events';
import { request } from 'undici';
import {
  MODE,
  MiB,
  connectOutcome,
  downloadUntilClose,
  makeTree,
  rawExchange,
  randomBytes,
  serverQuiet,
  sha256,
  startServer,
  waitFor,
  type Running,
  type Tree,
} from './helpers.js';

let tree: Tree;
let server: Running;

beforeAll(async () => {
  tree = makeTree();
  tree.write('huge.bin', randomBytes(48 * MiB));
  server = await startServer({ root: tree.root });
});

afterAll(async () => {
  try {
    await server?.close();
  } finally {
    tree?.cleanup();
  }
});

describe(`connections (${MODE})`, () => {
  it('answers 64 pipelined keep-alive requests in order, byte-exact, and keeps the connection', async () => {
    const names = ['small.txt', 'medium.bin', 'large.bin', 'index.html', 'app.js', 'empty.txt', 'missing.txt', 'style.css'];
    const plan = Array.from({ length: 64 }, (_, i) => ({ name: names[i % names.length]!, head: i % 9 === 4, range: i % 7 === 3 }));
    const text = plan
      .map((p) => `${p.head ? 'HEAD' : 'GET'} /${p.name} HTTP/1.1\r\nHost: t\r\n${p.range ? 'Range: bytes=3-1002\r\n' : ''}\r\n`)
      .join('');
    const { responses, socket, closed } = await rawExchange(server.port, text, 64, plan.map((p) => p.head), 60_000);
    expect(closed).toBe(false);
    expect(responses.length).toBe(64);
    responses.forEach((res, i) => {
      const p = plan[i]!;
      const data = tree.files[p.name];
      if (!data) {
        expect(res.status).toBe(404);
        return;
      }
      if (p.head) {
        expect(res.status).toBe(p.range && data.length > 3 ? 206 : 200);
        expect(res.body.length).toBe(0);
        return;
      }
      if (p.range && data.length > 3) {
        expect(res.status, `#${i} ${p.name}`).toBe(206);
        expect(sha256(res.body)).toBe(sha256(data.subarray(3, Math.min(1003, data.length))));
      } else {
        expect(res.status, `#${i} ${p.name}`).toBe(p.range ? 416 : 200);
        if (!p.range) expect(sha256(res.body), `#${i} ${p.name}`).toBe(sha256(data));
      }
    });
    // Still the same keep-alive connection: one more request on it.
    const more = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.once('end', () => resolve(Buffer.concat(chunks)));
    });
    socket.write('GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    const last = await more;
    expect(last.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(last.subarray(last.indexOf('\r\n\r\n') + 4).equals(tree.files['small.txt']!)).toBe(true);
    socket.destroy();
    await waitFor(() => serverQuiet(server), 10_000, 'quiet server');
  });

  it('survives clients aborting mid-body and releases everything', async () => {
    const before = server.fileServer.stats();
    const aborts = Array.from({ length: 12 }, async (_, i) => {
      const socket = net.connect(server.port, '127.0.0.1');
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.write(`GET /${i % 2 ? 'huge.bin' : 'large.bin'} HTTP/1.1\r\nHost: t\r\n\r\n`);
      let got = 0;
      const wanted = 64 * 1024 + i * 100_000;
      await new Promise<void>((resolve) => {
        socket.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= wanted) {
            // Unread data in the receive buffer makes this close a reset, as a browser tab closing does.
            socket.destroy();
            resolve();
          }
        });
        socket.once('close', () => resolve());
      });
    });
    await Promise.all(aborts);
    await waitFor(() => serverQuiet(server) && server.fileServer.stats().http.inFlight === 0, 15_000, 'released sends');
    const after = server.fileServer.stats();
    expect(after.sender.inFlightOps).toBe(0);
    expect(after.sender.pinnedBytes).toBe(0);
    expect(after.sender.opsReleased).toBe(after.sender.opsSubmitted);
    expect(after.files.inFlightBytes).toBe(0);
    expect(after.http.aborted - before.http.aborted).toBeGreaterThanOrEqual(1);
    // And the server still serves, byte-exact.
    const res = await request(server.url + 'huge.bin');
    expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(tree.files['huge.bin']!));
  });

  it('cuts off a stalled client at the socket timeout, cancelling its sends', async () => {
    const s = await startServer({ root: tree.root, timeoutMs: 400 });
    try {
      const socket = net.connect(s.port, '127.0.0.1');
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.write('GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n');
      // Read a little, then stop reading: the server's sends stall on a full window.
      await once(socket, 'data');
      socket.pause();
      await waitFor(() => s.fileServer.stats().http.timeouts >= 1, 15_000, 'the timeout');
      await waitFor(() => serverQuiet(s) && s.fileServer.stats().http.inFlight === 0, 15_000, 'released sends');
      const stats = s.fileServer.stats();
      expect(stats.sender.pinnedBytes).toBe(0);
      expect(stats.http.aborted).toBeGreaterThanOrEqual(1);
      socket.resume();
      if (!socket.destroyed) await once(socket, 'close');
      // The reset reached the client: it did not get the whole body.
      expect(socket.bytesRead).toBeLessThan(48 * MiB);
      const res = await request(s.url + 'small.txt');
      expect(await res.body.text()).toBe(tree.files['small.txt']!.toString());
    } finally {
      await s.close();
    }
  });

  it('answers malformed requests with 400 and stays up', async () => {
    const bad = [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/9.9\r\nHost: t\r\n\r\n',
      'GET /small.txt HTTP/1.1\r\n\r\n', // HTTP/1.1 without Host
      'GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n',
      `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: t\r\n\r\n`,
      'GET /small.txt HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n',
      'GET /small.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
    ];
    for (const text of bad) {
      const { responses } = await rawExchange(server.port, text, 1);
      expect(responses.length, JSON.stringify(text.slice(0, 40))).toBeGreaterThanOrEqual(1);
      expect([400, 431, 505]).toContain(responses[0]!.status);
    }
    const res = await request(server.url + 'medium.bin');
    expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(tree.files['medium.bin']!));
  });

  it('answers a request whose Transfer-Encoding does not end in chunked with 400 and closes, cached or not (RFC 9112 6.1)', async () => {
    const codings = ['xchunked', 'gzip', 'identity', 'chunked, gzip', 'chunked;x=1', ' , ', 'chunked\xa0'];
    for (const cached of [false, true]) {
      for (const coding of codings) {
        // A file looked up moments ago is answered synchronously: node:http's parser would
        // reject the request only after that 200 went out.
        if (cached) await (await request(server.url + 'small.txt')).body.text();
        const text = `GET /small.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: ${coding}\r\n\r\n`;
        const { responses, closed } = await rawExchange(server.port, Buffer.from(text, 'latin1'), 2);
        const label = `${coding}${cached ? ' (just looked up)' : ''}`;
        expect(responses.map((r) => r.status), label).toEqual([400]);
        expect(closed, label).toBe(true);
      }
    }
    // A request that does end in chunked is an ordinary GET with a body.
    const chunked = 'GET /small.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n0\r\n\r\n';
    const { responses } = await rawExchange(server.port, chunked, 1);
    expect(responses[0]!.status).toBe(200);
    expect(responses[0]!.body.toString()).toBe(tree.files['small.txt']!.toString());
  });

  it('closes gracefully: in-flight responses finish, new connections are refused', async () => {
    const s = await startServer({ root: tree.root });
    const sockets: net.Socket[] = [];
    const downloads = Array.from({ length: 6 }, () => {
      const { socket, raw } = downloadUntilClose(s.port, '/huge.bin');
      sockets.push(socket);
      return raw;
    });
    await waitFor(() => s.fileServer.stats().http.inFlight === 6, 10_000, 'six requests in flight');
    for (const socket of sockets) socket.pause(); // keep the responses in flight while closing starts
    const closed = s.fileServer.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(await connectOutcome(s.port)).toBe('ECONNREFUSED');
    for (const socket of sockets) socket.resume();
    const bodies = await Promise.all(downloads);
    for (const raw of bodies) {
      const body = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
      expect(sha256(body)).toBe(sha256(tree.files['huge.bin']!));
    }
    expect((await closed).forced).toBe(false);
    expect(serverQuiet(s)).toBe(true);
    await s.close();
  });
});
