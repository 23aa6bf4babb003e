// The splice engine's chains against a fake ring: the test plays the kernel (full, short, -EAGAIN,
// cancelled and failed splices) and checks what is queued next, how the socket is named, and
// when slots and pipes are let go. The fake ring is used in both modes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { load } from '@zcsend/native';
import { Sender, ZcSendError, type FileRef } from '../src/index.js';
import { FakeRing, type FakeRingOptions, type FakeSqe } from '../src/testing.js';
import { SpliceEngine, type SpliceOutcome } from '../src/files/splice-engine.js';
import { PipePool, type PipeSyscalls } from '../src/files/pipe-pool.js';
import { SocketSlots } from '../src/files/socket-slots.js';
import * as flags from '../src/files/ring-flags.js';
import { randomBytes, waitFor } from './helpers.js';
import { fdOf, fileFixtures } from './file-fixtures.js';
import { settle } from './fake.js';

const KiB = 1 << 10;
const { EAGAIN, ECANCELED, EINVAL, EPIPE, EBUSY, EPERM } = os.constants.errno;
const { IOSQE_FIXED_FILE, IOSQE_IO_LINK, POLLOUT, SPLICE_F_MOVE, SPLICE_F_NONBLOCK } = flags;

const { socket, writeFile } = fileFixtures('zcsend-splice-fake-');
// The engine reads through the fd the FileSender opened and checked: here the suite opens it.
let file: FileRef & { fd: number };

beforeAll(() => {
  const ref = writeFile(randomBytes(512 * KiB), 'body');
  file = { ...ref, fd: fs.openSync(ref.path, 'r') };
});
afterAll(() => fs.closeSync(file.fd));

/**
 * Pipe syscalls that hand out fake fds (the fake ring never touches them) and record closes.
 * F_SETPIPE_SZ grants at most `capacity`, and refuses sizes above `refuseAbove`.
 */
function fakePipes(capacity: number, refuseAbove = Infinity) {
  let next = 9000;
  const open = new Set<number>();
  const sys: PipeSyscalls = {
    pipe2: () => {
      const fds: [number, number] = [next++, next++];
      fds.forEach((fd) => open.add(fd));
      return fds;
    },
    setPipeSize: (_fd, size) => (size > refuseAbove ? -EPERM : Math.min(size, capacity)),
    closeFd: (fd) => (open.delete(fd) ? 0 : -9),
  };
  return { sys, open };
}

function setup(options: { capacity?: number; pairsPerChain?: number; ring?: FakeRingOptions } = {}) {
  const { factory, ring } = FakeRing.factory(options.ring);
  const sender = new Sender({ ring: factory });
  const pipes = fakePipes(options.capacity ?? 64 * KiB);
  const engine = new SpliceEngine(sender, { pipes: pipes.sys, pairsPerChain: options.pairsPerChain ?? 2 });
  return { sender, ring: ring(), engine, pipes };
}

/** Plays the kernel one SQE at a time: `complete` answers the oldest submitted SQE not answered yet. */
function kernel(ring: FakeRing) {
  const answered = new Set<FakeSqe>();
  const waiting = (): FakeSqe[] => ring.submitted().filter((s) => s.op !== 'cancel' && !answered.has(s));
  return {
    waiting,
    /** Waits until `n` SQEs are waiting, and returns them. */
    async chain(n: number): Promise<FakeSqe[]> {
      await waitFor(() => waiting().length >= n, 5000, `${n} SQEs to be submitted`);
      const got = waiting();
      expect(got).toHaveLength(n);
      return got;
    },
    complete(sqe: FakeSqe, res: number): void {
      expect(answered.has(sqe)).toBe(false);
      answered.add(sqe);
      ring.first(sqe.userData, res, false).flush();
    },
  };
}

const isFill = (s: FakeSqe) => s.op === 'splice' && !(s.zcFlags & IOSQE_FIXED_FILE);

const tick = () => new Promise<void>((r) => setTimeout(r, 5));

describe('splice engine chains (fake ring)', () => {
  it('links file->pipe->slot pairs and names the socket only by its registered slot', async () => {
    const { ring, engine, pipes, sender } = setup({ capacity: 64 * KiB, pairsPerChain: 2 });
    const sock = await socket();
    const k = kernel(ring);
    const sending = engine.send(sock, file, 100, 150_000);
    const first = await k.chain(4);
    const [pipeRead, pipeWrite] = [...pipes.open];
    expect(ring.files).not.toBeNull();
    expect([...ring.files!.entries()]).toEqual([[0, fdOf(sock)]]);
    // An unaligned start spans one page more: the first fill stops at the pipe's last page.
    expect(first.map((s) => [isFill(s) ? 'fill' : 'drain', s.offset, s.length, s.zcFlags])).toEqual([
      ['fill', 100, 64 * KiB - 100, IOSQE_IO_LINK],
      ['drain', -1, 64 * KiB - 100, IOSQE_FIXED_FILE | IOSQE_IO_LINK],
      ['fill', 64 * KiB, 64 * KiB, IOSQE_IO_LINK],
      ['drain', -1, 64 * KiB, IOSQE_FIXED_FILE],
    ]);
    for (const s of first.filter(isFill)) {
      expect(s).toMatchObject({ fd: pipeWrite, msgFlags: SPLICE_F_MOVE | SPLICE_F_NONBLOCK });
      expect(s.fdIn).not.toBe(fdOf(sock));
    }
    for (const s of first.filter((x) => !isFill(x))) expect(s).toMatchObject({ fd: 0, fdIn: pipeRead, msgFlags: SPLICE_F_MOVE });
    for (const s of first) k.complete(s, s.length);

    const second = await k.chain(2);
    expect(second.map((s) => [s.offset, s.length, s.zcFlags])).toEqual([
      [128 * KiB, 150_000 - 128 * KiB, IOSQE_IO_LINK],
      [-1, 150_000 - 128 * KiB, IOSQE_FIXED_FILE],
    ]);
    // Not one SQE named libuv's fd.
    expect(ring.sqes.every((s) => s.op === 'cancel' || s.fd !== fdOf(sock) || isFill(s))).toBe(true);
    for (const s of second) k.complete(s, s.length);
    expect(await sending).toEqual({ bytes: 150_000 - 100, fallback: null });
    expect(ring.files!.size).toBe(0);
    expect(engine.stats()).toMatchObject({ activeSends: 0, pipes: 1, idlePipes: 1, slotsInUse: 0, chains: 2, socketWaits: 0 });
    expect(sender.stats().inFlightOps).toBe(0);
  });

  it('a socket that pushes back (short count, -EAGAIN) gets a POLLOUT wait before the rest of the pipe', async () => {
    const { ring, engine } = setup({ capacity: 64 * KiB, pairsPerChain: 2 });
    const sock = await socket();
    const k = kernel(ring);
    const sending = engine.send(sock, file, 0, 100 * KiB);
    let chain = await k.chain(4);
    k.complete(chain[0]!, 64 * KiB);
    k.complete(chain[1]!, 10 * KiB); // short: the kernel fails the rest of the link
    k.complete(chain[2]!, -ECANCELED);
    k.complete(chain[3]!, -ECANCELED);

    chain = await k.chain(4);
    expect(chain.map((s) => [s.op, s.fd, s.length, s.zcFlags])).toEqual([
      ['pollAdd', 0, 0, IOSQE_FIXED_FILE | IOSQE_IO_LINK],
      ['splice', 0, 54 * KiB, IOSQE_FIXED_FILE | IOSQE_IO_LINK],
      ['splice', expect.any(Number), 36 * KiB, IOSQE_IO_LINK],
      ['splice', 0, 36 * KiB, IOSQE_FIXED_FILE],
    ]);
    expect(chain[0]!.msgFlags).toBe(POLLOUT);
    k.complete(chain[0]!, POLLOUT);
    k.complete(chain[1]!, -EAGAIN); // nothing taken
    k.complete(chain[2]!, -ECANCELED);
    k.complete(chain[3]!, -ECANCELED);

    chain = await k.chain(4);
    expect(chain.map((s) => [s.op, s.length])).toEqual([
      ['pollAdd', 0],
      ['splice', 54 * KiB],
      ['splice', 36 * KiB],
      ['splice', 36 * KiB],
    ]);
    for (const s of chain) k.complete(s, s.op === 'pollAdd' ? POLLOUT : s.length);
    expect(await sending).toEqual({ bytes: 100 * KiB, fallback: null });
    expect(engine.stats()).toMatchObject({ chains: 3, socketWaits: 2, slotsInUse: 0, idlePipes: 1 });
  });

  it('a short file->pipe splice: the bytes in the pipe are drained first, without a poll', async () => {
    const { ring, engine } = setup({ capacity: 64 * KiB, pairsPerChain: 1 });
    const sock = await socket();
    const k = kernel(ring);
    const sending = engine.send(sock, file, 0, 64 * KiB);
    let chain = await k.chain(2);
    k.complete(chain[0]!, 40 * KiB);
    k.complete(chain[1]!, -ECANCELED);
    chain = await k.chain(3);
    expect(chain.map((s) => [s.op, isFill(s), s.offset, s.length])).toEqual([
      ['splice', false, -1, 40 * KiB],
      ['splice', true, 40 * KiB, 24 * KiB],
      ['splice', false, -1, 24 * KiB],
    ]);
    for (const s of chain) k.complete(s, s.length);
    expect(await sending).toEqual({ bytes: 64 * KiB, fallback: null });
  });

  it('the socket closing cancels the chain; the slot is cleared and the pipe closed only after its last CQE', async () => {
    const { ring, engine, pipes, sender } = setup({ capacity: 64 * KiB, pairsPerChain: 2 });
    const sock = await socket();
    const k = kernel(ring);
    const sending = settle(engine.send(sock, file, 0, 256 * KiB));
    const chain = await k.chain(4);
    k.complete(chain[0]!, 64 * KiB);
    sock.destroy();
    await waitFor(() => ring.submitted('cancel').length === 3, 5000, 'the cancels');
    expect(ring.submitted('cancel').map((c) => c.userData).sort()).toEqual(chain.slice(1).map((s) => s.userData).sort());
    // Ops still in the kernel name the slot: it must keep the socket, and the pipe stays open.
    k.complete(chain[1]!, -ECANCELED);
    k.complete(chain[2]!, -ECANCELED);
    await tick();
    expect(sending.done()).toBe(false);
    expect(ring.files!.size).toBe(1);
    expect(pipes.open.size).toBe(2);
    k.complete(chain[3]!, -ECANCELED);
    await waitFor(sending.done, 5000, 'the transfer to settle');
    expect(sending.error()).toBeInstanceOf(ZcSendError);
    expect(sending.error()).toMatchObject({ code: 'ZCSEND_ERR_SOCKET_CLOSED' });
    expect(ring.files!.size).toBe(0);
    // 64 KiB went into the pipe and never out: it is closed, not pooled.
    expect(pipes.open.size).toBe(0);
    expect(engine.stats()).toMatchObject({ activeSends: 0, pipes: 0, slotsInUse: 0 });
    expect(sender.stats().inFlightOps).toBe(0);
  });

  it('Sender.close() waits while a transfer queues chain after chain', async () => {
    const { ring, engine, sender } = setup({ capacity: 64 * KiB, pairsPerChain: 1 });
    const sock = await socket();
    const k = kernel(ring);
    const sending = settle(engine.send(sock, file, 0, 192 * KiB));
    let chain = await k.chain(2);
    const closing = settle(sender.close());
    for (let round = 0; round < 3; round++) {
      for (const s of chain) k.complete(s, s.length);
      await tick();
      if (round < 2) {
        // The next chain went in from the last CQE's handler: the ring is never seen idle.
        expect(closing.done()).toBe(false);
        expect(ring.closed).toBe(false);
        chain = await k.chain(2);
      }
    }
    await waitFor(() => closing.done(), 5000, 'the Sender to close');
    expect(sending.value()).toEqual({ bytes: 192 * KiB, fallback: null });
    expect(ring.closed).toBe(true);
  });

  it('an op cancelled from outside (not by a broken link) stops the transfer instead of queueing it again', async () => {
    const { ring, engine, pipes } = setup({ capacity: 64 * KiB, pairsPerChain: 1 });
    const sock = await socket();
    const k = kernel(ring);
    const sending = engine.send(sock, file, 0, 200 * KiB);
    let chain = await k.chain(2);
    for (const s of chain) k.complete(s, s.length);
    chain = await k.chain(2);
    k.complete(chain[0]!, 64 * KiB);
    k.complete(chain[1]!, -ECANCELED); // its predecessor succeeded: someone cancelled it
    await expect(sending).rejects.toMatchObject({ code: 'ZCSEND_ERR_CANCELLED' });
    expect(k.waiting()).toHaveLength(0);
    expect(pipes.open.size).toBe(0);
    expect(engine.stats()).toMatchObject({ chains: 2, slotsInUse: 0 });
  });

  it('a file the kernel refuses to splice: the rest goes another way from where the socket stopped', async () => {
    const { ring, engine, pipes } = setup({ capacity: 64 * KiB, pairsPerChain: 1 });
    const sock = await socket();
    const k = kernel(ring);
    const sending = engine.send(sock, file, 10, 200 * KiB);
    let chain = await k.chain(2);
    for (const s of chain) k.complete(s, s.length);
    chain = await k.chain(2);
    k.complete(chain[0]!, -EINVAL);
    k.complete(chain[1]!, -ECANCELED);
    const outcome: SpliceOutcome = await sending;
    expect(outcome).toEqual({ bytes: 64 * KiB - 10, fallback: { reason: 'splice-refused', resumeAt: 64 * KiB } });
    // The pipe is known empty: pooled again.
    expect(pipes.open.size).toBe(2);
    expect(engine.stats()).toMatchObject({ idlePipes: 1, slotsInUse: 0 });
  });

  it('end of file before the range ends, or a failed splice to the socket, reject and discard the pipe', async () => {
    const { ring, engine, pipes } = setup({ capacity: 64 * KiB, pairsPerChain: 1 });
    const sock = await socket();
    const k = kernel(ring);
    const truncated = engine.send(sock, file, 0, 100 * KiB);
    let chain = await k.chain(2);
    k.complete(chain[0]!, 0);
    k.complete(chain[1]!, -ECANCELED);
    await expect(truncated).rejects.toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', syscall: 'read' });
    expect(pipes.open.size).toBe(0);

    const reset = engine.send(sock, file, 0, 100 * KiB);
    chain = await k.chain(2);
    k.complete(chain[0]!, 64 * KiB);
    k.complete(chain[1]!, -EPIPE);
    await expect(reset).rejects.toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', errno: EPIPE, syscall: 'splice' });
    expect(pipes.open.size).toBe(0);
    expect(engine.stats()).toMatchObject({ activeSends: 0, pipes: 0, slotsInUse: 0 });
  });

  it('falls back with a reason when splice cannot run, touching nothing', async () => {
    const sock = await socket();
    const refused = setup({ ring: { registerFilesResult: -EINVAL } });
    expect(refused.engine.unavailableReason).toMatch(/registered-file table/);
    expect(await refused.engine.send(sock, file, 0, 100)).toEqual({ bytes: 0, fallback: { reason: 'splice-unavailable', resumeAt: 0 } });
    expect(refused.ring.sqes).toHaveLength(0);
    expect(refused.pipes.open.size).toBe(0);

    const copy = new Sender({ backend: 'copy' });
    const noRing = new SpliceEngine(copy, { pipes: fakePipes(4096).sys });
    expect(noRing.unavailableReason).toMatch(/no ring/);
    expect((await noRing.send(sock, file, 5, 10)).fallback).toEqual({ reason: 'splice-unavailable', resumeAt: 5 });

    const noAddon = new SpliceEngine(new Sender({ ring: FakeRing.factory().factory }), { pipes: null });
    expect(noAddon.unavailableReason).toMatch(/native addon/);

    const closed = setup();
    await closed.sender.close();
    expect((await closed.engine.send(sock, file, 0, 10)).fallback?.reason).toBe('splice-unavailable');

    const ok = setup();
    const tls = Object.assign(await socket(), { encrypted: true });
    expect((await ok.engine.send(tls, file, 0, 10)).fallback?.reason).toBe('socket-ineligible');
    expect(ok.ring.sqes).toHaveLength(0);
  });

  it('a ring that refuses to queue the chain: rejects, and lets the slot go', async () => {
    const { ring, engine, pipes } = setup();
    const sock = await socket();
    ring.options.failQueueWith = -EBUSY;
    await expect(engine.send(sock, file, 0, 1000)).rejects.toMatchObject({ code: 'ZCSEND_ERR_SUBMIT_FAILED', errno: EBUSY });
    expect(ring.files!.size).toBe(0);
    expect(pipes.open.size).toBe(0);
  });
});

describe('pipe pool and socket slots', () => {
  it('pools empty pipes, closes dirty ones, bounds the count, and takes a smaller size when refused', () => {
    const { sys, open } = fakePipes(1 << 30, 256 * KiB);
    const pool = new PipePool(sys, { pipeSize: 1024 * KiB, maxPipes: 2, maxIdle: 1 });
    const a = pool.acquire();
    const b = pool.acquire();
    expect(typeof a).toBe('object');
    expect(pool.acquire()).toBe(-EBUSY);
    if (typeof a === 'number' || typeof b === 'number') throw new Error('no pipe');
    expect(a.capacity).toBe(256 * KiB); // 1 MiB refused (pipe-max-size): the next size down
    pool.release(a, false); // may hold stale bytes
    expect(open.has(a.readFd) || open.has(a.writeFd)).toBe(false);
    pool.release(b, true);
    expect(pool.stats()).toEqual({ open: 1, idle: 1 });
    expect(pool.acquire()).toBe(b);
    pool.release(b, true);
    pool.close();
    expect(open.size).toBe(0);
    expect(pool.stats()).toEqual({ open: 0, idle: 0 });
    expect(pool.acquire()).toBeLessThan(0);
  });

  it('hands out registered-file slots from a free list and clears them on give', () => {
    const { factory, ring } = FakeRing.factory();
    factory(() => {});
    const fake = ring();
    const slots = new SocketSlots(fake, 2);
    expect(slots.take(40)).toBe(0);
    expect(slots.take(41)).toBe(1);
    expect(slots.take(42)).toBe(-EBUSY);
    expect([...fake.files!.entries()]).toEqual([[0, 40], [1, 41]]);
    slots.give(0);
    expect(fake.files!.has(0)).toBe(false);
    expect(slots.take(43)).toBe(0);
    expect(slots.inUse).toBe(2);
    // One table per ring, shared by every engine on it.
    expect(SocketSlots.of(fake)).toBe(SocketSlots.of(fake));
  });

  it('uses the kernel values of the native binding', () => {
    const { binding } = load();
    if (!binding) return expect(binding).toBeNull(); // no addon here: nothing to compare with
    const c = binding.constants;
    expect([flags.IOSQE_FIXED_FILE, flags.IOSQE_IO_LINK, flags.SPLICE_F_MOVE, flags.SPLICE_F_NONBLOCK]).toEqual([
      c.IOSQE_FIXED_FILE,
      c.IOSQE_IO_LINK,
      c.SPLICE_F_MOVE,
      c.SPLICE_F_NONBLOCK,
    ]);
  });
});
