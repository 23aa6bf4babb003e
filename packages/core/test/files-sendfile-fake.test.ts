// The sendfile engine against a scripted sendfile(2) and a fake ring: the test plays the kernel
// (short counts, -EINTR, -EAGAIN, refusals, poll results) and checks which fd each call names,
// when a slot is taken and emptied, and what happens when the Sender closes. Runs in both modes.
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { FileSender, Sender, ZcSendError, type FileRef } from '../src/index.js';
import { FakeRing, type FakeRingOptions, type FakeSqe } from '../src/testing.js';
import { SendfileEngine, type SendfileOutcome } from '../src/files/sendfile-engine.js';
import { DEFAULT_SOCKET_SLOTS, SocketSlots } from '../src/files/socket-slots.js';
import { HotFiles } from '../src/files/hot-files.js';
import { PageResidency } from '../src/files/page-residency.js';
import * as flags from '../src/files/ring-flags.js';
import { randomBytes, waitFor } from './helpers.js';
import { fdOf, fileFixtures } from './file-fixtures.js';
import { settle } from './fake.js';

const KiB = 1 << 10;
const { EAGAIN, EBUSY, ECANCELED, EINTR, EINVAL, EPIPE } = os.constants.errno;
const { IOSQE_FIXED_FILE, POLLOUT } = flags;
const POLLERR = 0x8;

const { socket, writeFile } = fileFixtures('zcsend-sendfile-fake-');
let file: FileRef;

beforeAll(() => {
  file = writeFile(randomBytes(512 * KiB), 'body');
});

interface Call {
  outFd: number;
  offset: number;
  count: number;
}

/** A sendfile(2) that answers from a script (bytes or -errno per call); past the script, all of `count`. */
function scriptedSendfile(script: number[]) {
  const calls: Call[] = [];
  const syscall = (outFd: number, _inFd: number, offset: number, count: number): number => {
    calls.push({ outFd, offset, count });
    const next = script.shift();
    return next === undefined ? count : Math.min(next, count);
  };
  return { calls, syscall, script };
}

function setup(script: number[], options: { bytesPerTurn?: number; ring?: FakeRingOptions } = {}) {
  const { factory, ring } = FakeRing.factory(options.ring);
  const sender = new Sender({ ring: factory });
  const sys = scriptedSendfile(script);
  const engine = new SendfileEngine(sender, { sendfile: sys.syscall, bytesPerTurn: options.bytesPerTurn ?? 64 * KiB });
  return { sender, ring: ring(), engine, sys };
}

/** Waits for the `n`th poll to be submitted and returns it. */
async function poll(ring: FakeRing, n: number): Promise<FakeSqe> {
  await waitFor(() => ring.submitted('pollAdd').length >= n, 5000, `poll ${n} to be submitted`);
  return ring.submitted('pollAdd')[n - 1]!;
}

function complete(ring: FakeRing, sqe: FakeSqe, res: number): void {
  ring.first(sqe.userData, res, false).flush();
}

describe('sendfile engine (scripted syscall, fake ring)', () => {
  it('sends from the socket fd of the moment, retries EINTR, waits by slot on EAGAIN, empties the slot at the end', async () => {
    const { ring, engine, sys, sender } = setup([1000, -EINTR, 5000, -EAGAIN]);
    const sock = await socket();
    const s = settle(engine.send(sock, file, 100, 100_000));
    const wait = await poll(ring, 1);
    // No slot before the socket pushed back; then the socket, by slot, in a fixed-file POLLOUT.
    expect(wait).toMatchObject({ fd: 0, msgFlags: POLLOUT, zcFlags: IOSQE_FIXED_FILE });
    expect([...ring.files!.entries()]).toEqual([[0, fdOf(sock)]]);
    expect(sys.calls.map((c) => [c.outFd, c.offset])).toEqual([
      [fdOf(sock), 100],
      [fdOf(sock), 1100],
      [fdOf(sock), 1100],
      [fdOf(sock), 6100],
    ]);
    expect(s.done()).toBe(false);
    complete(ring, wait, POLLOUT);
    await waitFor(s.done, 5000, 'the send to finish');
    expect(s.error()).toBeUndefined();
    expect(s.value()).toEqual<SendfileOutcome>({ bytes: 99_900, fallback: null });
    // Contiguous, each call within one turn (64 KiB), ending exactly at `end`.
    for (let i = 1; i < sys.calls.length; i++) expect(sys.calls[i]!.offset).toBeGreaterThanOrEqual(sys.calls[i - 1]!.offset);
    expect(sys.calls.every((c) => c.count <= 64 * KiB)).toBe(true);
    const last = sys.calls[sys.calls.length - 1]!;
    expect(last.offset + last.count).toBe(100_000);
    expect(ring.files!.size).toBe(0);
    expect(engine.stats()).toMatchObject({ activeSends: 0, socketWaits: 1, calls: sys.calls.length });
    expect(engine.stats().yields).toBeGreaterThan(0); // 99,900 bytes in 64 KiB turns
    await sender.close();
  });

  it('never takes a slot when the socket keeps up', async () => {
    const { ring, engine, sender } = setup([]);
    const sock = await socket();
    expect(await engine.send(sock, file, 0, file.stat.size)).toEqual({ bytes: file.stat.size, fallback: null });
    expect(ring.submitted().length).toBe(0);
    expect(ring.files!.size).toBe(0);
    await sender.close();
  });

  it('a refusal after a prefix hands the rest to another engine, from the exact offset', async () => {
    const { engine, sender } = setup([1000, -EINVAL]);
    const sock = await socket();
    expect(await engine.send(sock, file, 10, 50_000)).toEqual({ bytes: 1000, fallback: { reason: 'sendfile-refused', resumeAt: 1010 } });
    await sender.close();
  });

  it('with a residency check: each later turn is asked first, and the rest is handed on (sendfile-uncached) once its pages left the cache', async () => {
    const { engine, sys, sender } = setup([], { bytesPerTurn: 64 * KiB });
    const sock = await socket();
    const asked: Array<[number, number]> = [];
    // Cached for the first two turns asked, then gone.
    const residency = new PageResidency((_fd, offset, length) => {
      asked.push([offset, offset + length]);
      return asked.length <= 2 ? 0 : 5;
    });
    const start = 1000;
    const outcome = await engine.send(sock, file, start, 400_000, undefined, residency);
    const turn = 64 * KiB;
    // The first turn was the caller's answer; turns 2 and 3 were asked and cached, turn 4 was not.
    expect(asked).toEqual([
      [start + turn, start + 2 * turn],
      [start + 2 * turn, start + 3 * turn],
      [start + 3 * turn, start + 4 * turn],
    ]);
    expect(outcome).toEqual({ bytes: 3 * turn, fallback: { reason: 'sendfile-uncached', resumeAt: start + 3 * turn } });
    const last = sys.calls[sys.calls.length - 1]!;
    expect(last.offset + last.count).toBe(start + 3 * turn);
    // Without one, nothing is asked and the whole range goes.
    expect(await engine.send(sock, file, 0, 300_000)).toEqual({ bytes: 300_000, fallback: null });
    expect(asked).toHaveLength(3);
    await sender.close();
  });

  it('every slot taken: the rest goes another way (sendfile-busy), from where the socket pushed back', async () => {
    const { ring, engine, sender } = setup([3000, -EAGAIN]);
    const sock = await socket();
    const slots = SocketSlots.of(ring);
    const taken = Array.from({ length: DEFAULT_SOCKET_SLOTS }, () => slots.take(fdOf(sock)));
    expect(slots.take(fdOf(sock))).toBe(-EBUSY);
    expect(await engine.send(sock, file, 0, 50_000)).toEqual({ bytes: 3000, fallback: { reason: 'sendfile-busy', resumeAt: 3000 } });
    taken.forEach((slot) => slots.give(slot));
    await sender.close();
  });

  it('socket errors: a failed poll and an error the next sendfile reports are typed errors; the slot is emptied', async () => {
    const { ring, engine, sender } = setup([-EAGAIN, -EAGAIN, -EPIPE]);
    const sock = await socket();
    const s = settle(engine.send(sock, file, 0, 50_000));
    complete(ring, await poll(ring, 1), -EINVAL);
    await waitFor(s.done, 5000, 'the send to fail');
    expect(s.error()).toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', errno: EINVAL });
    expect(ring.files!.size).toBe(0);

    const t = settle(engine.send(sock, file, 0, 50_000));
    // POLLERR wakes the wait; sendfile then says what went wrong.
    complete(ring, await poll(ring, 2), POLLOUT | POLLERR);
    await waitFor(t.done, 5000, 'the send to fail');
    expect(t.error()).toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', errno: EPIPE, syscall: 'sendfile' });
    expect(ring.files!.size).toBe(0);
    await sender.close();
  });

  it('a socket destroyed while waiting cancels the wait, and settles only on its CQE', async () => {
    const { ring, engine, sender } = setup([-EAGAIN]);
    const sock = await socket();
    const s = settle(engine.send(sock, file, 0, 50_000));
    const wait = await poll(ring, 1);
    sock.destroy();
    await waitFor(() => ring.submitted('cancel').length === 1, 5000, 'the cancel');
    expect(ring.submitted('cancel')[0]!.userData).toBe(wait.userData);
    await new Promise((r) => setTimeout(r, 20));
    expect(s.done()).toBe(false); // the poll may still name the slot
    expect(ring.files!.size).toBe(1);
    complete(ring, wait, -ECANCELED);
    await waitFor(s.done, 5000, 'the send to settle');
    expect(s.error()).toBeInstanceOf(ZcSendError);
    expect(s.error()).toMatchObject({ code: 'ZCSEND_ERR_SOCKET_CLOSED' });
    expect(ring.files!.size).toBe(0);
    await sender.close();
  });

  it('the Sender closing while the engine waits: the next wait is queued before the ring can close', async () => {
    const { ring, engine, sender } = setup([-EAGAIN, 2000, -EAGAIN]);
    const sock = await socket();
    const s = settle(engine.send(sock, file, 0, 10_000));
    const first = await poll(ring, 1);
    const closing = settle(sender.close());
    complete(ring, first, POLLOUT);
    // Inside that completion the engine sent 2000 bytes, met a full socket and queued a new wait.
    const second = await poll(ring, 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(ring.closed).toBe(false);
    expect(closing.done()).toBe(false);
    complete(ring, second, POLLOUT);
    await waitFor(s.done, 5000, 'the send to finish');
    expect(s.value()).toEqual({ bytes: 10_000, fallback: null });
    await waitFor(closing.done, 5000, 'the Sender to close');
    expect(ring.closed).toBe(true);
  });

  it('the Sender closed between turns: no wait is possible, the rest is handed on from the exact offset, nothing hangs', async () => {
    const { ring, engine, sender } = setup([64 * KiB, -EAGAIN], { bytesPerTurn: 64 * KiB });
    const sock = await socket();
    const sending = engine.send(sock, file, 0, 200 * KiB);
    // The first turn is used up at once: the engine yields with nothing in the ring, so close() goes through.
    await sender.close();
    expect(ring.closed).toBe(true);
    // (FileSender's copy engine then fails it with ZCSEND_ERR_SENDER_CLOSED: the Sender is gone.)
    expect(await sending).toEqual({ bytes: 64 * KiB, fallback: { reason: 'sendfile-unavailable', resumeAt: 64 * KiB } });
    expect(engine.stats().activeSends).toBe(0);
  });

  it('is unavailable without the syscall or a file table, with a reason', async () => {
    const { factory } = FakeRing.factory({ registerFilesResult: -EINVAL });
    const sender = new Sender({ ring: factory });
    const sock = await socket();
    const noTable = new SendfileEngine(sender, { sendfile: scriptedSendfile([]).syscall });
    expect(noTable.unavailableReason).toMatch(/registered-file table/);
    expect(await noTable.send(sock, file, 0, 10)).toEqual({ bytes: 0, fallback: { reason: 'sendfile-unavailable', resumeAt: 0 } });
    const noSyscall = new SendfileEngine(sender, { sendfile: null });
    expect(noSyscall.unavailableReason).toMatch(/sendfile/);
    await sender.close();
  });
});

describe('sendNow: a head and a small body in one synchronous step (scripted syscalls)', () => {
  /** A send(MSG_MORE) that answers from a script, recording each slice it was given. */
  function scriptedSendMore(script: number[]) {
    const calls: Array<{ fd: number; bytes: string }> = [];
    const syscall = (fd: number, data: Uint8Array, offset: number, length: number): number => {
      calls.push({ fd, bytes: Buffer.from(data.subarray(offset, offset + length)).toString('latin1') });
      const next = script.shift();
      return next === undefined ? length : Math.min(next, length);
    };
    return { calls, syscall };
  }

  function setupNow(sendMoreScript: number[], sendfileScript: number[]) {
    const { factory } = FakeRing.factory();
    const sender = new Sender({ ring: factory });
    const sys = scriptedSendfile(sendfileScript);
    const more = scriptedSendMore(sendMoreScript);
    const engine = new SendfileEngine(sender, { sendfile: sys.syscall, sendMore: more.syscall });
    return { sender, engine, sys, more };
  }

  const head = Buffer.from('HTTP/1.1 200 OK\r\n\r\n', 'latin1');

  it('sends the head, then the body from the socket fd of the moment; short counts and EINTR continue', async () => {
    const { engine, sys, more, sender } = setupNow([5, -EINTR], [1000, -EINTR]);
    const sock = await socket();
    expect(engine.sendNow(sock, head, 77, 10, 5000)).toEqual({ head: head.length, body: 4990 });
    expect(more.calls).toEqual([
      { fd: fdOf(sock), bytes: 'HTTP/1.1 200 OK\r\n\r\n' },
      { fd: fdOf(sock), bytes: '1.1 200 OK\r\n\r\n' },
      { fd: fdOf(sock), bytes: '1.1 200 OK\r\n\r\n' },
    ]);
    expect(sys.calls.map((c) => [c.outFd, c.offset, c.count])).toEqual([
      [fdOf(sock), 10, 4990],
      [fdOf(sock), 1010, 3990],
      [fdOf(sock), 1010, 3990],
    ]);
    expect(engine.stats()).toMatchObject({ immediateSends: 1, immediateBytes: 4990, calls: 3, socketWaits: 0 });
    await sender.close();
  });

  it('stops where the socket pushes back or fails, and says how far it got', async () => {
    const { engine, sys, sender } = setupNow([7, -EAGAIN, 4, -EPIPE], [2000, -EAGAIN, 0]);
    const sock = await socket();
    // The head half taken: no body call at all.
    expect(engine.sendNow(sock, head, 5, 0, 9000)).toEqual({ head: 7, body: 0 });
    expect(sys.calls.length).toBe(0);
    expect(engine.sendNow(sock, head, 5, 0, 9000)).toEqual({ head: 4, body: 0 });
    // Full after 2000 body bytes; then a file that ends early (0) stops it too.
    expect(engine.sendNow(sock, head, 5, 0, 9000)).toEqual({ head: head.length, body: 2000 });
    expect(engine.sendNow(sock, head, 5, 0, 9000)).toEqual({ head: head.length, body: 0 });
    expect(engine.stats()).toMatchObject({ immediateSends: 4, immediateBytes: 2000 });
    await sender.close();
  });

  it('send() with a head: head and the first turn in one step, then the rest after a yield, from the exact offset', async () => {
    const { factory, ring } = FakeRing.factory();
    const sender = new Sender({ ring: factory });
    const sys = scriptedSendfile([]);
    const more = scriptedSendMore([]);
    const engine = new SendfileEngine(sender, { sendfile: sys.syscall, sendMore: more.syscall, bytesPerTurn: 64 * KiB });
    const sock = await socket();
    expect(await engine.send(sock, file, 100, 200_100, head)).toEqual({ bytes: 200_000, fallback: null });
    expect(more.calls.length).toBe(1);
    // One turn's worth with the head; the transfer's first turn is already spent, so it yields first.
    expect(sys.calls.map((c) => [c.offset, c.count])).toEqual([
      [100, 64 * KiB],
      [100 + 64 * KiB, 64 * KiB],
      [100 + 128 * KiB, 64 * KiB],
      [100 + 192 * KiB, 200_000 - 192 * KiB],
    ]);
    expect(engine.stats()).toMatchObject({ yields: 3, immediateSends: 1, immediateBytes: 64 * KiB });
    expect(ring().submitted().length).toBe(0);
    // A body that fits the first turn is done without a transfer at all.
    expect(await engine.send(sock, file, 0, 1000, head)).toEqual({ bytes: 1000, fallback: null });
    expect(engine.stats()).toMatchObject({ yields: 3, immediateSends: 2 });
    await sender.close();
  });

  it('writes nothing (null) while libuv holds bytes for the socket, once it is destroyed, or without the syscalls', async () => {
    const { engine, more, sender } = setupNow([], []);
    const sock = await socket();
    sock.cork();
    sock.write('queued in libuv');
    expect(engine.sendNow(sock, head, 5, 0, 100)).toBeNull();
    sock.uncork();
    sock.destroy();
    expect(engine.sendNow(sock, head, 5, 0, 100)).toBeNull();
    expect(more.calls.length).toBe(0);
    const other = await socket();
    expect(new SendfileEngine(sender, { sendfile: scriptedSendfile([]).syscall, sendMore: null }).sendNow(other, head, 5, 0, 100)).toBeNull();
    await sender.close();
    // A closed Sender: the engine is unavailable, as for send().
    expect(engine.sendNow(other, head, 5, 0, 100)).toBeNull();
    expect(engine.stats()).toMatchObject({ immediateSends: 0, immediateBytes: 0 });
  });
});

describe('HotFiles (which versions auto may send by sendfile)', () => {
  const ref = (p: string, size: number, mtimeMs = 1): FileRef => ({ path: p, stat: { size, mtimeMs, ino: 7, dev: 1 } });

  it('knows a version once sent whole, forgets it when the path changes version', () => {
    const hot = new HotFiles(10_000);
    expect(hot.isHot(ref('/a', 100))).toBe(false);
    hot.sentWhole(ref('/a', 100));
    expect(hot.isHot(ref('/a', 100))).toBe(true);
    expect(hot.isHot(ref('/a', 100, 2))).toBe(false); // another mtime: another version
    hot.sentWhole(ref('/a', 100, 2));
    expect(hot.isHot(ref('/a', 100))).toBe(false);
    expect(hot.size).toBe(1);
  });

  it('stays within its byte and path bounds, forgetting the least recently sent first', () => {
    const hot = new HotFiles(1000, 3);
    hot.sentWhole(ref('/a', 600));
    hot.sentWhole(ref('/b', 300));
    hot.sentWhole(ref('/a', 600)); // sent again: now the most recent
    hot.sentWhole(ref('/c', 200)); // 1100 > 1000: /b goes
    expect(['/a', '/b', '/c'].map((p) => hot.isHot(ref(p, p === '/a' ? 600 : p === '/b' ? 300 : 200)))).toEqual([true, false, true]);
    hot.sentWhole(ref('/big', 1001)); // larger than the bound: never hot
    expect(hot.isHot(ref('/big', 1001))).toBe(false);
    for (const p of ['/d', '/e', '/f']) hot.sentWhole(ref(p, 1));
    expect(hot.size).toBe(3);
    expect(hot.isHot(ref('/a', 600))).toBe(false);
  });
});

describe('PageResidency (cachestat: whether a range would make sendfile wait for the disk)', () => {
  const { ENOSYS, EPERM } = os.constants.errno;

  it('is a yes or no from the kernel, unknown when it refuses, and stops asking a kernel without cachestat', () => {
    const asked: Array<[number, number, number]> = [];
    let answer = 0;
    const residency = new PageResidency((fd, offset, length) => {
      asked.push([fd, offset, length]);
      return answer;
    });
    expect(residency.resident(9, 100, 200)).toBe(true);
    expect(asked).toEqual([[9, 100, 100]]);
    answer = 3;
    expect(residency.resident(9, 0, 1 << 20)).toBe(false);
    expect(residency.resident(9, 5, 5)).toBeNull(); // an empty range: nothing to ask
    answer = -EPERM; // a file this process neither owns nor may write: unknown, and asked again next time
    expect(residency.resident(9, 0, 10)).toBeNull();
    answer = -ENOSYS;
    expect(residency.resident(9, 0, 10)).toBeNull();
    answer = 0;
    expect(residency.resident(9, 0, 10)).toBeNull();
    expect(asked).toHaveLength(4); // not the empty range, not after ENOSYS
    expect(new PageResidency(null).resident(9, 0, 10)).toBeNull();
  });
});

describe('FileSender: a file that changes after part of it was sent', () => {
  it('rejects as a failed send (bytes are out), not as FILE_CHANGED, when the copy that takes over finds another version', async () => {
    const { factory } = FakeRing.factory();
    const sender = new Sender({ ring: factory });
    const ref = writeFile(randomBytes(100 * KiB), 'part-way');
    let calls = 0;
    // The kernel's part: 1000 bytes while a deploy renames another file over the path, then a
    // refusal, so copy must take over from byte 1000 and opens the path anew.
    const engine = new SendfileEngine(sender, {
      sendfile: () => {
        if (++calls === 1) {
          writeFile(randomBytes(100 * KiB), 'part-way.next');
          fs.renameSync(`${ref.path}.next`, ref.path);
          return 1000;
        }
        return -EINVAL;
      },
    });
    const f = new FileSender({ sender, engine: 'sendfile' });
    (f as unknown as { sendfile: SendfileEngine }).sendfile = engine;
    const sock = await socket();
    const err = await f.sendFile(sock, ref, 0, ref.stat.size).catch((e: unknown) => e);
    expect(calls).toBe(2);
    expect(err).toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', syscall: 'fstat' });
    expect((err as ZcSendError).cause).toMatchObject({ code: 'ZCSEND_ERR_FILE_CHANGED' });
    sock.destroy();
    await f.close();
    await sender.close();
  });
});
