// The dual-CQE state machine against a fake ring: every legal CQE order, and illegal ones.
import { describe, expect, it } from 'vitest';
import { constants as osConstants } from 'node:os';
import { Sender, ZcSendError, type SenderStats } from '../src/index.js';
import { FakeRing } from '../src/testing.js';
import { bytes, fakeSender, tick, track } from './fake.js';
import { IORING_NOTIF_USAGE_ZC_COPIED, IORING_SEND_ZC_REPORT_USAGE, MSG_WAITALL } from '../src/constants.js';

const { EPIPE, ECANCELED, ENOMEM, EOPNOTSUPP, ECONNRESET } = osConstants.errno;
const FD = 900;
const MiB = 1 << 20;

const setup = (options: ConstructorParameters<typeof Sender>[0] = {}, fake: ConstructorParameters<typeof FakeRing>[1] = {}) =>
  fakeSender({ adaptive: false, chunkSize: MiB, threshold: 0 }, options, fake);

function expectQuiet(stats: SenderStats) {
  expect(stats.inFlightOps).toBe(0);
  expect(stats.pinnedBytes).toBe(0);
  expect(stats.pendingNotifications).toBe(0);
  expect(stats.opsReleased).toBe(stats.opsSubmitted);
}

describe('dual-CQE state machine (fake ring)', () => {
  it('submits one SEND_ZC with MSG_WAITALL and usage reporting, settles sent on the first CQE and released on the notification', async () => {
    const { sender, ring } = setup();
    expect(sender.backend).toBe('io_uring');
    const data = bytes(64 * 1024);
    const h = sender.send(FD, data);
    const sent = track(h.sent);
    const released = track(h.released);
    const [sqe] = ring.submitted('sendZc');
    expect(sqe).toMatchObject({ fd: FD, offset: 0, length: data.length, msgFlags: MSG_WAITALL, zcFlags: IORING_SEND_ZC_REPORT_USAGE });
    expect(ring.refs).toBe(1);

    ring.first(sqe!.userData, data.length).flush();
    await tick();
    expect(sent).toMatchObject({ done: true, value: data.length });
    expect(released.done).toBe(false);
    expect(sender.stats()).toMatchObject({ pinnedBytes: data.length, pendingNotifications: 1, inFlightOps: 1 });

    ring.notif(sqe!.userData).flush();
    await tick();
    expect(released.done).toBe(true);
    expect(released.value).toMatchObject({ bytes: data.length, ops: 1, zcOps: 1, copiedOps: 0, error: null });
    const stats = sender.stats();
    expectQuiet(stats);
    expect(stats).toMatchObject({ bytesSent: data.length, bytesZeroCopy: data.length, bytesCopied: 0, notifications: 1, violations: 0 });
    expect(ring.refs).toBe(0);
  });

  it('chunks a large body into ordered ops, one in flight, and releases only after every notification', async () => {
    const { sender, ring } = setup({ chunkSize: MiB });
    const data = bytes(3 * MiB + 5);
    const h = sender.send(FD, data);
    const sent = track(h.sent);
    const released = track(h.released);
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const zc = ring.submitted('sendZc');
      expect(zc).toHaveLength(i + 1); // the next chunk only after the previous first CQE
      const sqe = zc[i]!;
      expect(sqe.offset).toBe(i * MiB);
      expect(sqe.length).toBe(i < 3 ? MiB : 5);
      expect(Buffer.from(sqe.buf!).equals(data.subarray(i * MiB, i * MiB + sqe.length))).toBe(true);
      ids.push(sqe.userData);
      ring.first(sqe.userData, sqe.length).flush();
    }
    await tick();
    expect(sent.value).toBe(data.length);
    expect(released.done).toBe(false);
    // Notifications of different ops are unordered.
    for (const id of [ids[2]!, ids[0]!, ids[3]!]) ring.notif(id);
    ring.flush();
    await tick();
    expect(released.done).toBe(false);
    ring.notif(ids[1]!).flush();
    await tick();
    expect(released.value).toMatchObject({ ops: 4, bytes: data.length });
    expectQuiet(sender.stats());
  });

  it('resubmits the remainder of a short send as a new op', async () => {
    const { sender, ring } = setup();
    const data = bytes(100_000);
    const h = sender.send(FD, data);
    const first = ring.submitted('sendZc')[0]!;
    ring.first(first.userData, 30_000).flush();
    const second = ring.submitted('sendZc')[1]!;
    expect(second).toMatchObject({ offset: 30_000, length: 70_000 });
    expect(second.userData).not.toBe(first.userData);
    ring.first(second.userData, 70_000).notif(first.userData).notif(second.userData).flush();
    expect(await h.sent).toBe(100_000);
    expect((await h.released).ops).toBe(2);
    expectQuiet(sender.stats());
  });

  it('keeps byte order across concurrent sends on one socket', async () => {
    const { sender, ring } = setup();
    const a = bytes(2 * MiB, 1);
    const b = bytes(MiB / 2, 2);
    const c = bytes(MiB, 3);
    const handles = [a, b, c].map((d) => sender.send(FD, d));
    const order: Uint8Array[] = [];
    for (let guard = 0; guard < 10; guard++) {
      const open = ring.submitted('sendZc').filter((s) => !order.includes(s.buf!));
      if (open.length === 0) break;
      expect(open).toHaveLength(1);
      const sqe = open[0]!;
      order.push(sqe.buf!);
      ring.first(sqe.userData, sqe.length).notif(sqe.userData).flush();
    }
    const wire = Buffer.concat(order);
    expect(wire.equals(Buffer.concat([a, b, c]))).toBe(true);
    expect(await Promise.all(handles.map((h) => h.sent))).toEqual([a.length, b.length, c.length]);
    expectQuiet(sender.stats());
  });

  it('runs sockets independently: ops of different fds are in flight together', async () => {
    const { sender, ring } = setup();
    const hs = [1, 2, 3].map((i) => sender.send(FD + i, bytes(1000 * i)));
    const sqes = ring.submitted('sendZc');
    expect(sqes.map((s) => s.fd)).toEqual([FD + 1, FD + 2, FD + 3]);
    // Completions interleaved across ops, notifications before other ops' first CQEs.
    ring.first(sqes[2]!.userData, 3000).notif(sqes[2]!.userData).first(sqes[0]!.userData, 1000).first(sqes[1]!.userData, 2000);
    ring.notif(sqes[1]!.userData).notif(sqes[0]!.userData).flush();
    expect((await Promise.all(hs.map((h) => h.released))).map((r) => r.bytes)).toEqual([1000, 2000, 3000]);
    expectQuiet(sender.stats());
  });

  it('fails a send whose first CQE is an error with F_MORE, and releases after its notification', async () => {
    const { sender, ring } = setup();
    const h = sender.send(FD, bytes(50_000));
    const next = sender.send(FD, bytes(50_000));
    const released = track(h.released);
    const sqe = ring.submitted('sendZc')[0]!;
    ring.first(sqe.userData, -EPIPE, true).flush();
    const err = await h.sent.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZcSendError);
    expect(err).toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', errno: EPIPE, syscall: 'io_uring_enter' });
    // Queued sends behind a failed one fail too: the stream is broken.
    await expect(next.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED' });
    expect(ring.submitted('sendZc')).toHaveLength(1);
    await tick();
    expect(released.done).toBe(false);
    expect(sender.stats().pinnedBytes).toBe(50_000);
    ring.notif(sqe.userData).flush();
    expect((await h.released).error?.code).toBe('ZCSEND_ERR_SEND_FAILED');
    expectQuiet(sender.stats());
    expect(sender.stats()).toMatchObject({ opsFailed: 1, notifications: 1 });
  });

  it('releases at once when an error comes without F_MORE', async () => {
    const { sender, ring } = setup();
    const h = sender.send(FD, bytes(20_000));
    ring.first(ring.submitted('sendZc')[0]!.userData, -ECONNRESET, false).flush();
    await expect(h.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', errno: ECONNRESET });
    expect((await h.released).bytes).toBe(0);
    expectQuiet(sender.stats());
  });

  it('reports -ECANCELED as a cancellation', async () => {
    const { sender, ring } = setup();
    const h = sender.send(FD, bytes(20_000));
    const id = ring.submitted('sendZc')[0]!.userData;
    ring.first(id, -ECANCELED, true).notif(id).flush();
    await expect(h.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_CANCELLED', errno: ECANCELED });
    await h.released;
    expect(sender.stats()).toMatchObject({ cancellations: 1 });
    expectQuiet(sender.stats());
  });

  it('counts ZC_COPIED usage and, when adaptive, switches the socket to plain sends', async () => {
    const { sender, ring } = setup({ adaptive: true, chunkSize: 64 * 1024 });
    const h = sender.send(FD, bytes(256 * 1024));
    const [op1] = ring.submitted('sendZc');
    ring.first(op1!.userData, op1!.length).flush(); // op2 goes out before the verdict is known
    const op2 = ring.submitted('sendZc')[1]!;
    ring.notif(op1!.userData, IORING_NOTIF_USAGE_ZC_COPIED).flush();
    ring.first(op2.userData, op2.length).notif(op2.userData, IORING_NOTIF_USAGE_ZC_COPIED).flush();
    const plain = ring.submitted('send');
    expect(plain).toHaveLength(1);
    expect(plain[0]).toMatchObject({ offset: 128 * 1024, msgFlags: MSG_WAITALL });
    ring.first(plain[0]!.userData, 64 * 1024, false).flush();
    const op4 = ring.submitted('send')[1]!;
    ring.first(op4.userData, 64 * 1024, false).flush();
    expect(ring.submitted('sendZc')).toHaveLength(2);
    const report = await h.released;
    expect(report).toMatchObject({ ops: 4, zcOps: 2, plainOps: 2, copiedOps: 2 });
    const stats = sender.stats();
    expect(stats).toMatchObject({ bytesCopied: 128 * 1024, bytesZeroCopy: 0, bytesPlain: 128 * 1024, bytesSent: 256 * 1024 });
    expect(stats.fallbacks.copied).toBe(1);
    expectQuiet(stats);
  });

  it('keeps SEND_ZC when adaptive is off even though the kernel copied', async () => {
    const { sender, ring } = setup({ adaptive: false, chunkSize: 64 * 1024 });
    const h = sender.send(FD, bytes(128 * 1024));
    const first = ring.submitted('sendZc')[0]!;
    ring.first(first.userData, first.length).notif(first.userData, IORING_NOTIF_USAGE_ZC_COPIED).flush();
    expect(ring.submitted('send')).toHaveLength(0);
    const second = ring.submitted('sendZc')[1]!;
    ring.first(second.userData, second.length).notif(second.userData, IORING_NOTIF_USAGE_ZC_COPIED).flush();
    expect(await h.released).toMatchObject({ zcOps: 2, copiedOps: 2 });
    expect(sender.stats().bytesCopied).toBe(128 * 1024);
  });

  it.each([
    ['memlock', ENOMEM],
    ['unsupported', EOPNOTSUPP],
  ])('retries the same range with a plain send when SEND_ZC is refused (%s)', async (reason, errno) => {
    const { sender, ring } = setup();
    const data = bytes(40_000);
    const h = sender.send(FD, data);
    const zc = ring.submitted('sendZc')[0]!;
    ring.first(zc.userData, -errno, true).flush();
    const plain = ring.submitted('send')[0]!;
    expect(plain).toMatchObject({ offset: 0, length: 40_000 });
    ring.first(plain.userData, 40_000, false).flush();
    expect(await h.sent).toBe(40_000);
    const released = track(h.released);
    await tick();
    expect(released.done).toBe(false); // the refused SEND_ZC still owes its notification
    ring.notif(zc.userData).flush();
    await tick();
    expect(released.value).toMatchObject({ bytes: 40_000, fallbackReason: null, error: null });
    expect(sender.stats().fallbacks[reason as 'memlock']).toBe(1);
    expectQuiet(sender.stats());
  });

  it('detects and counts contract violations without crashing or releasing early', async () => {
    const { sender, ring } = setup();
    const h = sender.send(FD, bytes(10_000));
    const id = ring.submitted('sendZc')[0]!.userData;
    ring.cqe(424242, 10, 2).flush(); // unknown user_data
    ring.notif(id).flush(); // notification before the first CQE
    expect(sender.stats().violations).toBe(2);
    ring.first(id, 10_000).flush();
    ring.first(id, 10_000).flush(); // a second first CQE
    expect(sender.stats().violations).toBe(3);
    const released = track(h.released);
    await tick();
    expect(released.done).toBe(false);
    ring.notif(id).flush();
    ring.notif(id).flush(); // a notification for a released op: unknown now
    expect(sender.stats().violations).toBe(4);
    expect((await h.released).bytes).toBe(10_000);
    expectQuiet(sender.stats());
  });

  it('counts a notification for an op that never asked for one (no F_MORE)', async () => {
    const { sender, ring } = setup();
    sender.send(FD, bytes(20_000, 3));
    const id = ring.submitted('sendZc')[0]!.userData;
    ring.first(id, 10_000, true).flush(); // short: a new op goes out
    const second = ring.submitted('sendZc')[1]!.userData;
    ring.first(second, 10_000, false).notif(second).flush();
    expect(sender.stats().violations).toBe(1);
  });

  it('cancels the op in flight and rejects queued sends when a socket is cancelled', async () => {
    const { sender, ring } = setup();
    const a = sender.send(FD, bytes(MiB * 2));
    const b = sender.send(FD, bytes(1000));
    const id = ring.submitted('sendZc')[0]!.userData;
    sender.cancel(FD);
    const cancel = ring.submitted('cancel');
    expect(cancel).toHaveLength(1);
    expect(cancel[0]!.userData).toBe(id);
    await expect(a.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_CANCELLED' });
    await expect(b.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_CANCELLED' });
    ring.cancelDone(id).first(id, -ECANCELED, true).notif(id).flush();
    await a.released;
    await b.released;
    expect(sender.stats().violations).toBe(0);
    expectQuiet(sender.stats());
  });

  it('close() rejects new sends and resolves only when every notification is in', async () => {
    const { sender, ring } = setup();
    const h = sender.send(FD, bytes(8000));
    const id = ring.submitted('sendZc')[0]!.userData;
    const closed = track(sender.close());
    await expect(sender.send(FD, bytes(10)).sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SENDER_CLOSED' });
    ring.first(id, 8000).flush();
    await tick();
    expect(closed.done).toBe(false);
    expect(ring.closed).toBe(false);
    ring.notif(id).flush();
    await h.released;
    await tick();
    expect(closed.done).toBe(true);
    expect(ring.closed).toBe(true);
    expectQuiet(sender.stats());
  });

  it('destroy() cancels in-flight ops, then drains', async () => {
    const { sender, ring } = setup();
    const h = sender.send(FD, bytes(8000));
    const queued = sender.send(FD, bytes(8000));
    const id = ring.submitted('sendZc')[0]!.userData;
    const destroyed = track(sender.destroy());
    expect(ring.submitted('cancel').map((s) => s.userData)).toEqual([id]);
    await expect(h.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SENDER_CLOSED' });
    await expect(queued.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SENDER_CLOSED' });
    await tick();
    expect(destroyed.done).toBe(false);
    ring.first(id, -ECANCELED, true).notif(id).flush();
    await tick();
    expect(destroyed.done).toBe(true);
    expectQuiet(sender.stats());
  });

  it('fails cleanly when the ring refuses to queue an SQE', async () => {
    const { sender, ring } = setup({}, { failQueueWith: -16 });
    const h = sender.send(FD, bytes(5000));
    await expect(h.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SUBMIT_FAILED', errno: 16 });
    expect((await h.released).bytes).toBe(0);
    expect(ring.sqes).toHaveLength(0);
    expectQuiet(sender.stats());
  });

  it('sends datagrams with the sendto form', async () => {
    const { sender, ring } = setup();
    const data = bytes(1200);
    const h = sender.sendTo(FD, data, 5353, '127.0.0.1');
    const [sqe] = ring.submitted('sendtoZc');
    expect(sqe).toMatchObject({ port: 5353, address: '127.0.0.1', length: 1200 });
    ring.first(sqe!.userData, 1200).notif(sqe!.userData, IORING_NOTIF_USAGE_ZC_COPIED).flush();
    expect(await h.sent).toBe(1200);
    expect(await h.released).toMatchObject({ copiedOps: 1 });
    expectQuiet(sender.stats());
  });

  it('sends bodies under the threshold to a raw fd as plain ring sends', async () => {
    const { sender, ring } = setup({ threshold: 4096 });
    const h = sender.send(FD, bytes(100));
    const [sqe] = ring.submitted('send');
    ring.first(sqe!.userData, 100, false).flush();
    expect(await h.released).toMatchObject({ plainOps: 1, fallbackReason: 'below-threshold' });
  });

  it('rejects bad arguments with typed errors', () => {
    const { sender } = setup();
    const bad = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      return null;
    };
    expect(bad(() => sender.send(FD, 'text' as unknown as Uint8Array))).toMatchObject({ code: 'ZCSEND_ERR_INVALID_ARG' });
    expect(bad(() => sender.send(-1, bytes(1)))).toMatchObject({ code: 'ZCSEND_ERR_INVALID_ARG' });
    expect(bad(() => sender.send({} as never, bytes(1)))).toMatchObject({ code: 'ZCSEND_ERR_INVALID_ARG' });
    expect(bad(() => sender.sendTo(FD, bytes(1), 0, '127.0.0.1'))).toMatchObject({ code: 'ZCSEND_ERR_INVALID_ARG' });
    expect(bad(() => sender.sendTo(FD, bytes(1), 53, 'localhost'))).toMatchObject({ code: 'ZCSEND_ERR_INVALID_ARG' });
    expect(bad(() => new Sender({ chunkSize: 10 }))).toMatchObject({ code: 'ZCSEND_ERR_INVALID_OPTION' });
    expect(bad(() => new Sender({ entries: 100 }))).toMatchObject({ code: 'ZCSEND_ERR_INVALID_OPTION' });
    expect(bad(() => new Sender({ nope: 1 } as never))).toMatchObject({ code: 'ZCSEND_ERR_INVALID_OPTION' });
    expect(bad(() => new Sender({ backend: 'fast' as never }))).toMatchObject({ code: 'ZCSEND_ERR_INVALID_OPTION' });
    expect(sender.stats().opsSubmitted).toBe(0);
  });

  it('a send refused for a bad socket argument leaves nothing behind: close() resolves', async () => {
    const { sender } = setup();
    for (const socket of [0, -1, 1.5, {} as never, 'x' as never]) {
      expect(() => sender.send(socket, bytes(1))).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_ARG' }));
    }
    const settled = await Promise.race([
      sender.close().then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('close() still pending after 1 s'), 1000)),
    ]);
    expect(settled).toBe('closed');
  });

  it('reports an injected ring that fails to open as the fallback reason, or as an error when io_uring is required', () => {
    const failing = () => {
      throw new Error('setup refused');
    };
    const sender = new Sender({ ring: failing });
    expect(sender.backend).toBe('copy');
    expect(sender.fallbackReason).toContain('setup refused');
    expect(() => new Sender({ ring: failing, backend: 'io_uring' })).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_URING_UNAVAILABLE' }));
  });

  it('routes completions of raw ring ops (file engines) and waits for them on close()', async () => {
    const { sender, ring } = setup();
    const raw = sender.ringOps()!;
    const results: Array<[number, number]> = [];
    const rc = raw.queue([
      { prepare: (r, id) => r.splice!(5, 0, 6, -1, 4096, 0, 0, id), onComplete: (res, flags) => results.push([res, flags]) },
      { prepare: (r, id) => r.splice!(6, -1, 7, -1, 4096, 0, 0, id), onComplete: (res, flags) => results.push([res, flags]) },
    ]);
    expect(rc).toBe(0);
    const sqes = ring.submitted('splice');
    expect(sqes.map((s) => s.fd)).toEqual([6, 7]);
    expect(sender.stats().inFlightOps).toBe(2);
    expect(ring.refs).toBe(1);
    const closed = track(sender.close());
    ring.first(sqes[0]!.userData, 4096, false).flush();
    await tick();
    expect(closed.done).toBe(false);
    ring.first(sqes[1]!.userData, 4096, false).flush();
    await tick();
    expect(results).toEqual([[4096, 0], [4096, 0]]);
    expect(closed.done).toBe(true);
    expect(sender.stats()).toMatchObject({ inFlightOps: 0, violations: 0 });
    expect(sender.ringOps()).toBeNull();
  });

  it('sends slices of a registered buffer with fixed-buffer SEND_ZC', async () => {
    const { sender, ring } = setup({ chunkSize: 64 * 1024 });
    const base = Buffer.allocUnsafeSlow(256 * 1024).fill(7);
    const slot = sender.registerBuffer(base);
    expect(slot).toBeGreaterThanOrEqual(0);
    expect(ring.buffers![slot]).toBe(base);
    const slice = base.subarray(100_000, 200_000);
    const h = sender.send(FD, slice, { fixedBuffer: slot });
    for (let i = 0; i < 2; i++) {
      const sqe = ring.submitted('sendZcFixed')[i]!;
      expect(sqe).toMatchObject({ bufIndex: slot, offset: 100_000 + i * 64 * 1024 });
      ring.first(sqe.userData, sqe.length).notif(sqe.userData).flush();
    }
    expect(await h.released).toMatchObject({ bytes: 100_000, zcOps: 2 });
    expect(sender.stats().fixedOpsSubmitted).toBe(2);
    expect(() => sender.send(FD, Buffer.alloc(10), { fixedBuffer: slot })).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_ARG' }));
    sender.unregisterBuffer(slot);
    expect(ring.buffers![slot]).toBeNull();
    expect(() => sender.send(FD, slice, { fixedBuffer: slot })).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_ARG' }));
    expectQuiet(sender.stats());
  });

  it('returns -1 from registerBuffer when the kernel refuses to pin (RLIMIT_MEMLOCK), counting the fallback', () => {
    const { sender } = setup({}, { failRegisterWith: -ENOMEM });
    expect(sender.registerBuffer(Buffer.allocUnsafeSlow(4096))).toBe(-1);
    const { sender: s2, ring: r2 } = setup();
    r2.options.failRegisterWith = undefined;
    const slot = s2.registerBuffer(Buffer.allocUnsafeSlow(4096));
    r2.options.failRegisterWith = -ENOMEM;
    expect(s2.registerBuffer(Buffer.allocUnsafeSlow(4096))).toBe(-1);
    expect(s2.stats().fallbacks.memlock).toBe(1);
    expect(slot).toBe(0);
  });

  it('destroy() cancels raw ring ops too, and drains them', async () => {
    const { sender, ring } = setup();
    const results: number[] = [];
    sender.ringOps()!.queue([{ prepare: (r, id) => r.splice!(5, 0, 6, -1, 4096, 0, 0, id), onComplete: (res) => results.push(res) }]);
    const [sqe] = ring.submitted('splice');
    const destroyed = track(sender.destroy());
    expect(ring.submitted('cancel').map((s) => s.userData)).toEqual([sqe!.userData]);
    await tick();
    expect(destroyed.done).toBe(false);
    ring.cancelDone(sqe!.userData).first(sqe!.userData, -ECANCELED, false).flush();
    await tick();
    expect(results).toEqual([-ECANCELED]);
    expect(destroyed.done).toBe(true);
  });
});
