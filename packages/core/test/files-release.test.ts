// Buffer lifetimes of the file engines against a fake ring: the test decides when each send is
// sent (first CQE) and when it is released (notification), so "never reuse or free before the
// release" is checked deterministically. The fake ring is used in both modes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileSender, Sender, type FileRef, type FileSenderOptions } from '../src/index.js';
import { FakeRing, type FakeSqe } from '../src/testing.js';
import { randomBytes, tcpPair, waitFor, type TcpPair } from './helpers.js';

const KiB = 1 << 10;

let dir: string;
const pairs: TcpPair[] = [];
const fileSenders: FileSender[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-files-fake-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  for (const p of pairs.splice(0)) p.close();
  fileSenders.splice(0);
});

let counter = 0;
function writeFile(data: Uint8Array): FileRef {
  const p = path.join(dir, `f${++counter}`);
  fs.writeFileSync(p, data);
  return { path: p, stat: fs.statSync(p) };
}

function setup(options: FileSenderOptions) {
  const { factory, ring } = FakeRing.factory();
  const sender = new Sender({ adaptive: false, threshold: 0, chunkSize: 1 << 20, ring: factory });
  const files = new FileSender({ ...options, sender });
  fileSenders.push(files);
  return { files, ring: ring() };
}

async function socket() {
  const p = await tcpPair();
  pairs.push(p);
  return p.sender;
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

/**
 * Plays the kernel: completes (first CQE) every send SQE as soon as it is submitted, and sends its
 * notification only when `notify` says so. Returns the SQEs it completed, in order.
 */
function playKernel(ring: FakeRing, notify: (sqe: FakeSqe) => boolean = () => false) {
  const completed: FakeSqe[] = [];
  const seen = new Set<number>();
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const sqe of ring.submitted().filter((s) => s.op === 'sendZc' || s.op === 'sendZcFixed')) {
        if (seen.has(sqe.userData)) continue;
        seen.add(sqe.userData);
        completed.push(sqe);
        ring.first(sqe.userData, sqe.length);
        if (notify(sqe)) ring.notif(sqe.userData);
      }
      ring.flush();
      await tick();
    }
  })();
  return {
    completed,
    /** Delivers the held notifications of these SQEs. */
    release(sqes: FakeSqe[]) {
      for (const sqe of sqes) ring.notif(sqe.userData);
      ring.flush();
    },
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

describe('file engines against a fake ring: buffers live until released', () => {
  it('copy: a pooled buffer is reused only after its send is released, and reads wait on the byte budget', async () => {
    const chunk = 64 * KiB;
    const { files, ring } = setup({ engine: 'copy', chunkSize: chunk, maxInFlightBytes: 4 * chunk });
    const data = randomBytes(10 * chunk);
    const file = writeFile(data);
    const sock = await socket();
    const kernel = playKernel(ring);
    const sending = files.sendFile(sock, file, 0, data.length);

    // Four chunks sent but not released fill the budget: the fifth read waits.
    await waitFor(() => kernel.completed.length === 4 && files.stats().waitingSends === 1, 5000, 'the budget to fill');
    await new Promise((r) => setTimeout(r, 30));
    expect(kernel.completed.length).toBe(4);
    expect(files.stats()).toMatchObject({ inFlightBytes: 4 * chunk, waitingSends: 1, pool: { buffers: 4, free: 0 } });
    // Each buffer the kernel may still read holds exactly the chunk it was sent with: none was reused.
    kernel.completed.forEach((sqe, i) => expect(Buffer.from(sqe.buf!).equals(data.subarray(i * chunk, (i + 1) * chunk))).toBe(true));

    // Releasing the first send frees one buffer: the next read reuses it, nothing new is allocated.
    const first = kernel.completed[0]!;
    kernel.release([first]);
    await waitFor(() => kernel.completed.length === 5, 5000, 'the fifth chunk');
    expect(files.stats().pool.buffers).toBe(4);
    expect(Buffer.from(first.buf!).equals(data.subarray(4 * chunk, 5 * chunk))).toBe(true);

    // Release as they come from here on.
    let released = 1;
    while (released < 10) {
      await waitFor(() => kernel.completed.length > released, 5000, 'the next chunk');
      kernel.release(kernel.completed.slice(released));
      released = kernel.completed.length;
    }
    expect(await sending).toMatchObject({ bytes: data.length, engine: 'copy' });
    await kernel.stop();
    await files.close();
    expect(files.stats()).toMatchObject({ inFlightBytes: 0, waitingSends: 0, pool: { buffers: 0, free: 0 } });
    expect(files.sender.stats()).toMatchObject({ pinnedBytes: 0, inFlightOps: 0 });
  });

  it('copy: a socket closing while a read waits for the budget rejects, closes the fd, and keeps unreleased buffers', async () => {
    const chunk = 64 * KiB;
    const { files, ring } = setup({ engine: 'copy', chunkSize: chunk, maxInFlightBytes: 2 * chunk });
    const data = randomBytes(6 * chunk);
    const file = writeFile(data);
    const sock = await socket();
    const fdsBefore = fs.readdirSync('/proc/self/fd').length;
    const kernel = playKernel(ring);
    const sending = files.sendFile(sock, file, 0, data.length);
    await waitFor(() => files.stats().waitingSends === 1 && kernel.completed.length === 2, 5000, 'a read to wait');
    sock.destroy();
    await expect(sending).rejects.toMatchObject({ code: 'ZCSEND_ERR_SOCKET_CLOSED' });
    expect(files.stats()).toMatchObject({ waitingSends: 0, inFlightBytes: 2 * chunk, pool: { buffers: 2, free: 0 } });
    let closed = false;
    const closing = files.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(closed).toBe(false); // the kernel still holds two buffers
    kernel.release(kernel.completed);
    await closing;
    await kernel.stop();
    expect(files.stats()).toMatchObject({ inFlightBytes: 0, errors: 1 });
    await waitFor(() => fs.readdirSync('/proc/self/fd').length <= fdsBefore, 5000, 'the file fd to be closed');
  });

  it('zc-cache: a referenced entry is neither evicted nor freed when invalidated, until its send is released', async () => {
    const { files, ring } = setup({ engine: 'zc-cache', cacheBytes: 1024 * KiB });
    const a = randomBytes(600 * KiB);
    const b = randomBytes(600 * KiB);
    const fileA = writeFile(a);
    const fileB = writeFile(b);
    const sock = await socket();
    const kernel = playKernel(ring, (sqe) => sqe.length !== a.length || !Buffer.from(sqe.buf!).equals(a));

    // A is sent (first CQE) but its notification is held: the kernel may still read the cached buffer.
    expect(await files.sendFile(sock, fileA, 0, a.length)).toMatchObject({ engine: 'zc-cache', cacheHit: false });
    const sqeA = kernel.completed[0]!;
    expect(files.stats().cache).toMatchObject({ entries: 1, bytes: a.length, busyBytes: a.length });

    // B needs A's room: A is referenced, so B is served by copy and nothing is evicted.
    expect(await files.sendFile(sock, fileB, 0, b.length)).toMatchObject({ engine: 'copy', fallbackReason: 'cache-full' });
    expect(files.stats().cache).toMatchObject({ entries: 1, evictions: 0, bytes: a.length });

    // A rewritten: the entry is invalidated but stays charged (its memory is still the kernel's).
    const a2 = randomBytes(200 * KiB);
    fs.writeFileSync(fileA.path, a2);
    const refA2 = { path: fileA.path, stat: fs.statSync(fileA.path) };
    expect(await files.sendFile(sock, refA2, 0, a2.length)).toMatchObject({ engine: 'zc-cache', cacheHit: false });
    expect(files.stats().cache).toMatchObject({ entries: 1, invalidations: 1, bytes: a.length + a2.length });
    expect(Buffer.from(sqeA.buf!).equals(a)).toBe(true);

    kernel.release([sqeA]);
    await waitFor(() => files.stats().cache.bytes === a2.length, 5000, 'the invalidated entry to be freed');
    expect(await files.sendFile(sock, fileB, 0, b.length)).toMatchObject({ engine: 'zc-cache', cacheHit: false });
    expect(files.stats().cache).toMatchObject({ entries: 2, evictions: 0, bytes: a2.length + b.length });
    await kernel.stop();
    await files.close();
    expect(files.stats().cache).toMatchObject({ entries: 0, bytes: 0, busyBytes: 0 });
  });
});
