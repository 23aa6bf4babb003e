// Real kernel, real sockets on loopback: bytes compared end to end by sha256, in both modes.
// With io_uring, adaptive is off so SEND_ZC really runs (loopback would otherwise switch to plain sends).
import { afterEach, describe, expect, it } from 'vitest';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { once } from 'node:events';
import { Sender, type SenderStats } from '../src/index.js';
import { MODE, URING, randomBytes, receive, sha256, tcpPair, waitFor, type TcpPair } from './helpers.js';

const MiB = 1 << 20;
const pairs: TcpPair[] = [];
const senders: Sender[] = [];

async function pair(): Promise<TcpPair> {
  const p = await tcpPair();
  pairs.push(p);
  return p;
}

function newSender(options: ConstructorParameters<typeof Sender>[0] = {}): Sender {
  const s = new Sender({ adaptive: false, ...options });
  senders.push(s);
  return s;
}

afterEach(async () => {
  for (const p of pairs.splice(0)) p.close();
  await Promise.all(senders.splice(0).map((s) => s.destroy()));
});

function expectQuiet(stats: SenderStats) {
  expect(stats.inFlightOps).toBe(0);
  expect(stats.pinnedBytes).toBe(0);
  expect(stats.pendingNotifications).toBe(0);
  expect(stats.opsReleased).toBe(stats.opsSubmitted);
}

describe.runIf(MODE === 'copy' || URING)(`Sender on real sockets (${MODE})`, () => {
  it('uses the backend this mode asks for', () => {
    const sender = newSender();
    expect(sender.backend).toBe(MODE === 'uring' ? 'io_uring' : 'copy');
    if (MODE === 'copy') expect(sender.fallbackReason).toMatch(/ZCSEND_DISABLE/);
    else expect(sender.fallbackReason).toBeNull();
  });

  it('sends 256 MiB through one TCP socket with concurrent send() calls, byte-exact and in order', async () => {
    const sender = newSender();
    const { sender: sock, receiver } = await pair();
    const parts = Array.from({ length: 8 }, () => randomBytes(32 * MiB));
    const total = 256 * MiB;
    const received = receive(receiver, total);
    const handles = parts.map((p) => sender.send(sock, p));
    const sent = await Promise.all(handles.map((h) => h.sent));
    expect(sent).toEqual(parts.map((p) => p.length));
    const got = await received;
    expect(got.bytes).toBe(total);
    expect(got.sha256).toBe(sha256(...parts));
    const reports = await Promise.all(handles.map((h) => h.released));
    await sender.close();
    const stats = sender.stats();
    expectQuiet(stats);
    expect(stats.bytesSent).toBe(total);
    if (MODE === 'uring') {
      const opsPerPart = Math.ceil((32 * MiB) / sender.chunkSize);
      expect(reports.every((r) => r.path === 'io_uring' && r.zcOps === r.ops && r.ops >= opsPerPart)).toBe(true);
      expect(stats.notifications).toBe(stats.zcOpsSubmitted);
      expect(stats.zcOpsSubmitted).toBeGreaterThanOrEqual(8 * opsPerPart);
    } else {
      expect(reports.every((r) => r.path === 'copy' && r.ops === 0)).toBe(true);
      expect(stats.copyWrites).toBe(8);
    }
  });

  it('reports on loopback that the kernel copied the zero-copy data', async () => {
    const sender = newSender();
    const { sender: sock, receiver } = await pair();
    const data = randomBytes(4 * MiB);
    const received = receive(receiver, data.length);
    const report = await sender.send(sock, data).released;
    expect((await received).sha256).toBe(sha256(data));
    const stats = sender.stats();
    if (MODE === 'uring') {
      expect(report.zcOps).toBeGreaterThan(0);
      expect(report.copiedOps).toBe(report.zcOps); // loopback always copies
      expect(stats.bytesCopied).toBe(data.length);
      expect(stats.bytesZeroCopy).toBe(0);
    } else {
      expect(stats.bytesCopied).toBe(0);
      expect(stats.bytesPlain).toBe(data.length);
    }
  });

  it('adaptive mode sends to loopback peers with plain sends from the start', async () => {
    const sender = newSender({ adaptive: true });
    const { sender: sock, receiver } = await pair();
    const data = randomBytes(3 * MiB);
    const received = receive(receiver, data.length);
    const report = await sender.send(sock, data).released;
    expect((await received).sha256).toBe(sha256(data));
    if (MODE === 'uring') {
      expect(sender.plainReasonFor(sock)).toBe('loopback');
      expect(newSender({ adaptive: false }).plainReasonFor(sock)).toBeNull();
      expect(report).toMatchObject({ zcOps: 0, fallbackReason: 'loopback', path: 'io_uring' });
      expect(sender.stats().fallbacks.loopback).toBe(1);
    } else {
      expect(report.path).toBe('copy');
      expect(sender.plainReasonFor(sock)).toBe('disabled');
    }
  });

  it('keeps bytes libuv still holds ahead of the zero-copy body', async () => {
    const sender = newSender();
    const { sender: sock, receiver } = await pair();
    const head = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2097152\r\n\r\n');
    const body = randomBytes(2 * MiB);
    const tail = randomBytes(70_000);
    const received = receive(receiver, head.length + body.length + tail.length);
    sock.write(head);
    const h1 = sender.send(sock, body);
    const h2 = sender.send(sock, tail);
    await Promise.all([h1.sent, h2.sent]);
    expect((await received).sha256).toBe(sha256(head, body, tail));
  });

  it('serves many sockets at once', async () => {
    const sender = newSender();
    const ps = await Promise.all(Array.from({ length: 24 }, () => pair()));
    const bodies = ps.map(() => randomBytes(2 * MiB + 12345));
    const results = await Promise.all(
      ps.map(async (p, i) => {
        const received = receive(p.receiver, bodies[i]!.length);
        await sender.send(p.sender, bodies[i]!).sent;
        return received;
      }),
    );
    results.forEach((r, i) => expect(r.sha256).toBe(sha256(bodies[i]!)));
    await sender.close();
    expectQuiet(sender.stats());
  });

  it('fails cleanly when the peer closes mid-send, leaking nothing', async () => {
    const sender = newSender();
    const { sender: sock, receiver } = await pair();
    let got = 0;
    receiver.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got > MiB) receiver.destroy();
    });
    const h = sender.send(sock, randomBytes(128 * MiB));
    const err = await h.sent.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: expect.stringMatching(/^ZCSEND_ERR_(SEND_FAILED|SOCKET_CLOSED|CANCELLED)$/) });
    const report = await h.released;
    expect(report.error).toBe(err);
    expect(report.bytes).toBeLessThan(128 * MiB);
    await waitFor(() => sock.destroyed, 5000, 'the broken socket to be destroyed');
    await sender.close();
    expectQuiet(sender.stats());
  });

  it('cancels in-flight ops when the socket is destroyed and refuses later sends on it', async () => {
    const sender = newSender();
    const { sender: sock, receiver } = await pair();
    receiver.pause(); // the peer reads nothing: the send cannot complete
    const h = sender.send(sock, randomBytes(64 * MiB));
    const queued = sender.send(sock, randomBytes(MiB));
    if (MODE === 'uring') await waitFor(() => sender.stats().opsSubmitted > 0, 5000, 'the first op');
    await new Promise((r) => setTimeout(r, 50));
    sock.destroy();
    await expect(h.sent).rejects.toMatchObject({ code: expect.stringMatching(/^ZCSEND_ERR_(SOCKET_CLOSED|CANCELLED|SEND_FAILED)$/) });
    await expect(queued.sent).rejects.toMatchObject({ code: expect.stringMatching(/^ZCSEND_ERR_/) });
    const after = sender.send(sock, randomBytes(100_000));
    await expect(after.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SOCKET_CLOSED' });
    // The peer going away lets the kernel drop the queued skbs, so notifications arrive.
    receiver.destroy();
    await h.released;
    await queued.released;
    await sender.close();
    const stats = sender.stats();
    expectQuiet(stats);
    if (MODE === 'uring') {
      expect(stats.notifications).toBe(stats.zcOpsSubmitted);
      expect(stats.violations).toBe(0);
    }
  });

  it('never sends a closed socket’s bytes to a new connection that reuses its fd number', async () => {
    const sender = newSender();
    const a = await pair();
    a.receiver.pause();
    const fdOf = (s: net.Socket) => (s as unknown as { _handle: { fd: number } | null })._handle?.fd ?? -1;
    const fdA = fdOf(a.sender);
    const h = sender.send(a.sender, randomBytes(64 * MiB));
    await new Promise((r) => setTimeout(r, 50));
    a.sender.destroy(); // libuv closes fdA now; the kernel op may still hold the old socket
    // Open connections until one of their sockets lands on the same fd number.
    const server = net.createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    let victim: net.Socket | null = null;
    let observer: net.Socket | null = null;
    const opened: net.Socket[] = [];
    for (let i = 0; i < 20 && !victim; i++) {
      const client = net.connect(port, '127.0.0.1');
      const [accepted] = (await once(server, 'connection')) as [net.Socket];
      opened.push(client, accepted);
      if (fdOf(client) === fdA) [victim, observer] = [client, accepted];
      else if (fdOf(accepted) === fdA) [victim, observer] = [accepted, client];
    }
    expect(victim, `no new socket reused fd ${fdA}`).not.toBeNull();
    let stray = 0;
    const countStray = (chunk: Buffer) => (stray += chunk.length);
    observer!.on('data', countStray);
    await expect(h.sent).rejects.toMatchObject({ code: expect.stringMatching(/^ZCSEND_ERR_/) });
    await new Promise((r) => setTimeout(r, 200));
    expect(stray).toBe(0);
    // The new socket works normally on the reused number.
    observer!.off('data', countStray);
    const data = randomBytes(MiB);
    const received = receive(observer!, data.length);
    await sender.send(victim!, data).sent;
    expect((await received).sha256).toBe(sha256(data));
    for (const s of opened) s.destroy();
    server.close();
    a.receiver.destroy();
    await h.released;
  });

  it('sends slices of a registered buffer (fixed-buffer SEND_ZC) byte-exact', async () => {
    const sender = newSender();
    const { sender: sock, receiver } = await pair();
    const base = Buffer.allocUnsafeSlow(12 * MiB);
    randomBytes(12 * MiB).copy(base);
    const slot = sender.registerBuffer(base);
    if (MODE === 'uring') expect(slot).toBeGreaterThanOrEqual(0);
    else expect(slot).toBe(-1);
    const slices = [base.subarray(0, 5 * MiB), base.subarray(3 * MiB + 17, 12 * MiB), base.subarray(1, 2)];
    const received = receive(receiver, slices.reduce((n, s) => n + s.length, 0));
    const opts = slot >= 0 ? { fixedBuffer: slot } : {};
    const handles = slices.map((s) => sender.send(sock, s, { ...opts, threshold: 0 }));
    await Promise.all(handles.map((h) => h.released));
    expect((await received).sha256).toBe(sha256(...slices));
    if (MODE === 'uring') expect(sender.stats().fixedOpsSubmitted).toBeGreaterThanOrEqual(3);
    sender.unregisterBuffer(slot);
    await sender.close();
    expectQuiet(sender.stats());
  });

  it('close() waits until every notification is in', async () => {
    const sender = newSender();
    const { sender: sock, receiver } = await pair();
    receiver.pause();
    const data = randomBytes(16 * MiB);
    const h = sender.send(sock, data);
    let closed = false;
    const closing = sender.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    if (MODE === 'uring') expect(sender.stats().pinnedBytes).toBeGreaterThan(0);
    const received = receive(receiver, data.length);
    receiver.resume();
    expect((await received).sha256).toBe(sha256(data));
    await closing;
    expect(closed).toBe(true);
    expect((await h.released).bytes).toBe(data.length);
    const stats = sender.stats();
    expectQuiet(stats);
    if (MODE === 'uring') expect(stats.notifications).toBe(stats.zcOpsSubmitted);
  });

  it('sends UDP datagrams intact with sendTo', async () => {
    const sender = newSender();
    const rx = dgram.createSocket('udp4');
    const tx = dgram.createSocket('udp4');
    rx.bind(0, '127.0.0.1');
    tx.bind(0, '127.0.0.1');
    await Promise.all([once(rx, 'listening'), once(tx, 'listening')]);
    const { port } = rx.address();
    const datagrams = Array.from({ length: 20 }, (_, i) => randomBytes(1000 + i * 50));
    const got = new Set<string>();
    const all = new Promise<void>((resolve) =>
      rx.on('message', (msg) => {
        got.add(sha256(msg));
        if (got.size === datagrams.length) resolve();
      }),
    );
    const handles = datagrams.map((d) => sender.sendTo(tx, d, port, '127.0.0.1'));
    expect(await Promise.all(handles.map((h) => h.sent))).toEqual(datagrams.map((d) => d.length));
    await all;
    expect(got).toEqual(new Set(datagrams.map((d) => sha256(d))));
    const reports = await Promise.all(handles.map((h) => h.released));
    if (MODE === 'uring') expect(reports.every((r) => r.zcOps === 1 && r.copiedOps === 1)).toBe(true);
    // The report names the path that really carried each datagram.
    expect(new Set(reports.map((r) => r.path))).toEqual(new Set([MODE === 'uring' ? 'io_uring' : 'copy']));
    rx.close();
    tx.close();
    await sender.close();
    expectQuiet(sender.stats());
  });
});
