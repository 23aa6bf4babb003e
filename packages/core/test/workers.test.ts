// Worker threads: each JS thread has its own Sender and ring. Two workers and the main thread
// send at the same time (all three with ops in flight at once), byte-exact, and shut down
// cleanly; a worker terminated with sends in flight takes nothing else down and puts no wrong
// byte on the wire.
import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Sender, type SenderStats } from '../src/index.js';
import { MODE, URING, waitFor } from './helpers.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const MiB = 1 << 20;
const TAG_BYTES = 8;

/** Deterministic body bytes, so the receiver can check any prefix without being sent the body. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafeSlow(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

// The same generator for the workers (they cannot import the test file).
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const net = require('node:net');
const { once } = require('node:events');
const { createHash } = require('node:crypto');
${pattern.toString()}
(async () => {
  const core = await import(workerData.dist);
  const flags = new Int32Array(workerData.flags);
  const perThread = core.getSender();
  const fresh = perThread.stats().opsSubmitted === 0 && perThread.stats().copyWrites === 0;
  const sender = new core.Sender({ adaptive: false });
  const sock = net.connect(workerData.port, '127.0.0.1');
  sock.on('error', () => {});
  await once(sock, 'connect');
  const tag = Buffer.alloc(${TAG_BYTES});
  tag.writeUInt32LE(workerData.id, 0);
  sock.write(tag); // through libuv: must reach the peer before the ring's bytes
  const data = pattern(workerData.size, workerData.seed);
  const h = sender.send(sock, data);
  // In flight: the receiver reads nothing yet, so the op cannot complete.
  const inFlight = () => (sender.backend === 'io_uring' ? sender.stats().inFlightOps > 0 : true);
  while (!inFlight()) await new Promise((r) => setTimeout(r, 2));
  Atomics.store(flags, workerData.id, 1);
  Atomics.notify(flags, workerData.id);
  parentPort.postMessage({ type: 'in-flight' });
  if (workerData.hang) return; // to be terminated with the send in flight
  await h.sent;
  const report = await h.released;
  sock.end();
  await once(sock, 'close');
  await sender.close();
  parentPort.postMessage({
    type: 'done',
    sha: createHash('sha256').update(data).digest('hex'),
    backend: sender.backend,
    ring: sender.ringDescription,
    fresh,
    report: { bytes: report.bytes, ops: report.ops, zcOps: report.zcOps, path: report.path, error: report.error && report.error.code },
    stats: sender.stats(),
  });
})().catch((err) => parentPort.postMessage({ type: 'error', error: String(err && err.stack || err) }));
`;

interface WorkerDone {
  type: 'done';
  sha: string;
  backend: string;
  ring: string | null;
  fresh: boolean;
  report: { bytes: number; ops: number; zcOps: number; path: string; error: string | null };
  stats: SenderStats;
}

interface Receiver {
  socket: net.Socket;
  id: Promise<number>;
  /** Resolves at close with the body bytes (after the tag) and their hash. */
  body: Promise<{ bytes: number; sha256: string; prefixOk: (expected: (n: number) => Buffer) => boolean; raw: Buffer[] }>;
}

/** Accepts connections; each one's first TAG_BYTES say which thread sends on it. Reads nothing until resumed. */
async function receiverServer(): Promise<{ port: number; accept: () => Promise<Receiver>; close: () => void }> {
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const pending: net.Socket[] = [];
  const waiters: Array<(s: net.Socket) => void> = [];
  server.on('connection', (s: net.Socket) => {
    s.on('error', () => {});
    const w = waiters.shift();
    if (w) w(s);
    else pending.push(s);
  });
  const accept = async (): Promise<Receiver> => {
    const socket = pending.shift() ?? (await new Promise<net.Socket>((resolve) => waiters.push(resolve)));
    let resolveId!: (n: number) => void;
    const id = new Promise<number>((r) => (resolveId = r));
    const body = new Promise<Awaited<Receiver['body']>>((resolve) => {
      const hash = createHash('sha256');
      const raw: Buffer[] = [];
      let head = Buffer.alloc(0);
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => {
        if (head.length < TAG_BYTES) {
          const need = TAG_BYTES - head.length;
          head = Buffer.concat([head, chunk.subarray(0, need)]);
          chunk = chunk.subarray(need);
          if (head.length === TAG_BYTES) resolveId(head.readUInt32LE(0));
        }
        if (chunk.length === 0) return;
        hash.update(chunk);
        raw.push(chunk);
        bytes += chunk.length;
      });
      socket.once('close', () =>
        resolve({
          bytes,
          sha256: hash.digest('hex'),
          raw,
          prefixOk: (expected) => Buffer.concat(raw).equals(expected(bytes)),
        }),
      );
    });
    return { socket, id, body };
  };
  return { port: (server.address() as net.AddressInfo).port, accept, close: () => server.close() };
}

function startWorker(data: { id: number; port: number; size: number; seed: number; flags: SharedArrayBuffer; hang?: boolean }) {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ...data, dist } });
  const messages: Array<{ type: string; error?: string }> = [];
  worker.on('message', (m: { type: string }) => messages.push(m));
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const done = new Promise<WorkerDone>((resolve, reject) => {
    worker.on('message', (m: { type: string; error?: string }) => {
      if (m.type === 'done') resolve(m as WorkerDone);
      if (m.type === 'error') reject(new Error(`worker ${data.id}: ${m.error}`));
    });
    worker.once('error', reject);
  });
  done.catch(() => {});
  return { worker, messages, exited, done };
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

describe.runIf(MODE === 'copy' || URING)(`worker threads, one ring each (${MODE})`, () => {
  it('two workers and the main thread send concurrently on their own rings, byte-exact, and shut down cleanly', async () => {
    const server = await receiverServer();
    cleanup.push(server.close);
    const flags = new SharedArrayBuffer(3 * 4);
    const view = new Int32Array(flags);
    const SIZE = 24 * MiB;
    const workers = [1, 2].map((id) => startWorker({ id, port: server.port, size: SIZE, seed: id * 1000 + 7, flags }));
    cleanup.push(() => Promise.all(workers.map((w) => w.worker.terminate())));

    // The main thread is the third sender, with a Sender of its own.
    const mainSender = new Sender({ adaptive: false });
    const client = net.connect(server.port, '127.0.0.1');
    client.on('error', () => {});
    await once(client, 'connect');
    const tag = Buffer.alloc(TAG_BYTES);
    tag.writeUInt32LE(0, 0);
    client.write(tag);
    const mainData = pattern(SIZE, 7);
    const mainHandle = mainSender.send(client, mainData);

    const receivers = await Promise.all([0, 1, 2].map(() => server.accept()));
    // Let the tags through, then stop reading: every sender's op stays in flight.
    await waitFor(() => mainSender.backend === 'copy' || mainSender.stats().inFlightOps > 0, 10_000, 'the main thread op');
    Atomics.store(view, 0, 1);
    await waitFor(() => view[0] === 1 && view[1] === 1 && view[2] === 1, 20_000, 'all three threads to have a send in flight');
    if (MODE === 'uring') {
      // All three rings hold ops at this moment: the main one here, the workers' by their flags.
      expect(mainSender.stats().inFlightOps).toBeGreaterThan(0);
    }
    for (const r of receivers) r.socket.resume();
    const ids = await Promise.all(receivers.map((r) => r.id));
    expect(ids.sort()).toEqual([0, 1, 2]);

    expect(await mainHandle.sent).toBe(SIZE);
    await mainHandle.released;
    client.end();
    const results = await Promise.all(workers.map((w) => w.done));
    const bodies = await Promise.all(receivers.map(async (r) => ({ id: await r.id, body: await r.body })));
    const expectedSha = (seed: number) => createHash('sha256').update(pattern(SIZE, seed)).digest('hex');
    for (const { id, body } of bodies) {
      expect(body.bytes, `thread ${id}`).toBe(SIZE);
      expect(body.sha256, `thread ${id}`).toBe(id === 0 ? expectedSha(7) : expectedSha(id * 1000 + 7));
    }
    for (const r of results) {
      expect(r.fresh).toBe(true); // getSender() in a worker is that thread's own
      expect(r.report).toMatchObject({ bytes: SIZE, error: null });
      expect(r.stats).toMatchObject({ inFlightOps: 0, pinnedBytes: 0, pendingNotifications: 0, violations: 0 });
      if (MODE === 'uring') {
        expect(r.backend).toBe('io_uring');
        expect(r.ring).toBeTruthy();
        expect(r.report.zcOps).toBeGreaterThan(0);
        expect(r.stats.notifications).toBe(r.stats.zcOpsSubmitted);
      } else {
        expect(r.backend).toBe('copy');
      }
    }
    // Clean shutdown: the workers end on their own once their Sender closed (nothing keeps their loop alive).
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
    await mainSender.close();
    const stats = mainSender.stats();
    expect(stats).toMatchObject({ inFlightOps: 0, pinnedBytes: 0, pendingNotifications: 0, violations: 0 });
    if (MODE === 'uring') expect(stats.notifications).toBe(stats.zcOpsSubmitted);
  });

  it('a worker terminated with sends in flight: the process and the other rings carry on, and no wrong byte reaches its peer', async () => {
    const server = await receiverServer();
    cleanup.push(server.close);
    const flags = new SharedArrayBuffer(2 * 4);
    const SIZE = 32 * MiB;
    const doomed = startWorker({ id: 1, port: server.port, size: SIZE, seed: 99, flags, hang: true });
    const receiver = await server.accept();
    await waitFor(() => doomed.messages.some((m) => m.type === 'in-flight' || m.type === 'error'), 20_000, 'the worker send in flight');
    expect(doomed.messages.find((m) => m.type === 'error')?.error).toBeUndefined();
    expect(await doomed.worker.terminate()).toBe(1);
    // Churn the allocator: if the dead worker's memory were freed while the kernel still read it
    // and then reused, these bytes would show up in the stream.
    const junk = Array.from({ length: 64 }, () => Buffer.alloc(MiB, 0xee));
    receiver.socket.resume();
    const body = await receiver.body;
    expect(await receiver.id).toBe(1);
    expect(body.bytes).toBeLessThanOrEqual(SIZE);
    expect(body.prefixOk((n) => pattern(SIZE, 99).subarray(0, n))).toBe(true);
    expect(junk.length).toBe(64);

    // This thread's ring (and another worker's) still work.
    const flags2 = new SharedArrayBuffer(3 * 4);
    const survivor = startWorker({ id: 2, port: server.port, size: 4 * MiB, seed: 5, flags: flags2 });
    const r2 = await server.accept();
    r2.socket.resume();
    const done = await survivor.done;
    expect((await r2.body).sha256).toBe(done.sha);
    expect(await survivor.exited).toBe(0);
    const mainSender = new Sender({ adaptive: false });
    const client = net.connect(server.port, '127.0.0.1');
    client.on('error', () => {});
    await once(client, 'connect');
    client.write(Buffer.alloc(TAG_BYTES));
    const r3 = await server.accept();
    r3.socket.resume();
    const data = pattern(3 * MiB, 3);
    expect(await mainSender.send(client, data).sent).toBe(data.length);
    client.end();
    expect((await r3.body).sha256).toBe(createHash('sha256').update(data).digest('hex'));
    await mainSender.close();
  });
});
