import dgram from 'node:dgram';

import { afterEach, describe, expect, it } from 'vitest';

import {
  closeTestResources, collect, delay, dgramFd, F_MORE, F_NOTIF, fdOf, Harness, native, pattern, sha256, skipUring, tcpPair,
  type TcpPair, ZC_COPIED,
} from './helpers.js';

describe.skipIf(skipUring)('sends on loopback sockets', () => {
  let harness: Harness | null = null;
  let pair: TcpPair | null = null;
  afterEach(async () => {
    ({ harness, pair } = await closeTestResources(harness, pair));
  });

  it('sendZc of 8 MiB with MSG_WAITALL: one result CQE, then exactly one copied notification', async () => {
    const c = native().constants;
    harness = new Harness();
    pair = await tcpPair();
    const body = pattern(8 * 1024 * 1024, 7);
    const received = collect(pair.server, body.length);
    expect(harness.ring.sendZc(fdOf(pair.client), body, 0, body.length, c.MSG_WAITALL, c.IORING_SEND_ZC_REPORT_USAGE, 11)).toBe(0);
    expect(harness.ring.submit()).toBe(1);
    const { first, notif } = await harness.settle(11);
    expect(sha256(await received)).toBe(sha256(body));
    await delay(50); // nothing else may arrive for this op
    const cqes = harness.of(11);
    expect(cqes).toHaveLength(2);
    expect(first.res).toBe(body.length);
    expect(first.flags & F_MORE).toBe(F_MORE);
    expect(first.flags & F_NOTIF).toBe(0);
    // The notification comes second (never before the result) and carries only F_NOTIF.
    expect(notif!.flags).toBe(F_NOTIF);
    // Loopback copies: REPORT_USAGE says so (res is -2147483648 as an int32, not an error).
    expect(notif!.res >>> 0).toBe(ZC_COPIED);
    expect(notif!.res).toBe(-2147483648);
  });

  it('sendZc without REPORT_USAGE gets a notification with res 0', async () => {
    harness = new Harness();
    pair = await tcpPair();
    const body = pattern(64 * 1024, 3);
    const received = collect(pair.server, body.length);
    expect(harness.ring.sendZc(fdOf(pair.client), body, 0, body.length, native().constants.MSG_WAITALL, 0, 12)).toBe(0);
    harness.ring.submit();
    const { first, notif } = await harness.settle(12);
    expect(first.res).toBe(body.length);
    expect(notif!.res).toBe(0);
    expect((await received).equals(body)).toBe(true);
  });

  it('sendZc honours offset/length inside a larger view', async () => {
    harness = new Harness();
    pair = await tcpPair();
    const backing = pattern(256 * 1024, 9);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 1000, 200_000);
    const expected = Buffer.from(view.subarray(5000, 5000 + 100_000));
    const received = collect(pair.server, expected.length);
    expect(harness.ring.sendZc(fdOf(pair.client), view, 5000, 100_000, native().constants.MSG_WAITALL, 0, 13)).toBe(0);
    harness.ring.submit();
    expect((await harness.settle(13)).first.res).toBe(100_000);
    expect((await received).equals(expected)).toBe(true);
  });

  it('sendZcFixed sends a range of a registered buffer', async () => {
    const c = native().constants;
    harness = new Harness({ bufferSlots: 4 });
    pair = await tcpPair();
    const registered = pattern(1024 * 1024, 5);
    expect(harness.ring.updateBuffer(2, registered)).toBe(0);
    const expected = registered.subarray(4096, 4096 + 512 * 1024);
    const received = collect(pair.server, expected.length);
    expect(harness.ring.sendZcFixed(fdOf(pair.client), 2, registered, 4096, expected.length, c.MSG_WAITALL,
      c.IORING_SEND_ZC_REPORT_USAGE, 21)).toBe(0);
    harness.ring.submit();
    const { first, notif } = await harness.settle(21);
    expect(first.res).toBe(expected.length);
    expect(first.flags & F_MORE).toBe(F_MORE);
    expect(notif!.flags).toBe(F_NOTIF);
    expect(sha256(await received)).toBe(sha256(expected));
    // A range outside the registered slot is refused by the kernel, not sent.
    const other = pattern(4096, 1);
    expect(harness.ring.sendZcFixed(fdOf(pair.client), 2, other, 0, other.length, 0, 0, 22)).toBe(0);
    harness.ring.submit();
    expect((await harness.settle(22)).first.res).toBe(-c.errno.EFAULT);
    expect(harness.ring.updateBuffer(2, null)).toBe(0);
    expect(() => harness!.ring.sendZcFixed(fdOf(pair!.client), 2, registered, 1024 * 1024, 1, 0, 0, 23)).toThrow(RangeError);
  });

  it('registering into a slot without a sparse table fails with -errno, not an exception', () => {
    harness = new Harness();
    const buf = Buffer.alloc(4096);
    expect(harness.ring.updateBuffer(0, buf)).toBe(-native().constants.errno.ENXIO);
    expect(harness.ring.registerBufferSlots(8)).toBe(0);
    expect(harness.ring.updateBuffer(0, buf)).toBe(0);
    expect(harness.ring.updateBuffer(8, buf)).toBe(-native().constants.errno.EINVAL);
    expect(harness.ring.updateBuffer(0, null)).toBe(0);
    expect(() => harness!.ring.updateBuffer(1, Buffer.alloc(0))).toThrow(RangeError);
  });

  it('send (plain, copying) delivers the bytes with a single CQE', async () => {
    harness = new Harness();
    pair = await tcpPair();
    const body = pattern(2 * 1024 * 1024, 11);
    const received = collect(pair.server, body.length);
    expect(harness.ring.send(fdOf(pair.client), body, 0, body.length, native().constants.MSG_WAITALL, 31)).toBe(0);
    harness.ring.submit();
    await harness.waitFor(() => harness!.of(31).length > 0, 'send CQE');
    expect(sha256(await received)).toBe(sha256(body));
    await delay(20);
    expect(harness.of(31)).toEqual([{ userData: 31, hi: 0, res: body.length, flags: 0 }]);
  });

  it('sendmsgZc sends header and body in order (and submits by itself)', async () => {
    const c = native().constants;
    harness = new Harness();
    pair = await tcpPair();
    const header = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n');
    const body = pattern(1024 * 1024, 13);
    const tail = new Uint8Array([1, 2, 3]);
    const expected = Buffer.concat([header, body, tail]);
    const received = collect(pair.server, expected.length);
    expect(harness.ring.sendmsgZc(fdOf(pair.client), [header, body, tail], c.MSG_WAITALL, c.IORING_SEND_ZC_REPORT_USAGE, 41)).toBe(0);
    const { first, notif } = await harness.settle(41); // no submit() call needed
    expect(first.res).toBe(expected.length);
    expect(notif!.flags).toBe(F_NOTIF);
    expect(notif!.res >>> 0).toBe(ZC_COPIED);
    expect(sha256(await received)).toBe(sha256(expected));
  });

  it('sendtoZc sends intact datagrams to a node:dgram socket', async () => {
    const c = native().constants;
    harness = new Harness();
    const receiver = dgram.createSocket('udp4');
    const sender = dgram.createSocket('udp4');
    try {
      await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
      await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', resolve));
      const { port } = receiver.address();
      const datagrams = [pattern(1200, 1), pattern(60_000, 2), pattern(1, 3), pattern(8000, 4)];
      const got: Buffer[] = [];
      const all = new Promise<void>((resolve) => receiver.on('message', (msg) => {
        got.push(msg);
        if (got.length === datagrams.length) resolve();
      }));
      datagrams.forEach((d, i) => {
        expect(harness!.ring.sendtoZc(dgramFd(sender), d, 0, d.length, 0, c.IORING_SEND_ZC_REPORT_USAGE, port, '127.0.0.1', 50 + i)).toBe(0);
      });
      await all;
      expect(got.map(sha256).sort()).toEqual(datagrams.map(sha256).sort());
      for (let i = 0; i < datagrams.length; i++) {
        const { first, notif } = await harness.settle(50 + i);
        expect(first.res).toBe(datagrams[i].length);
        expect(notif!.flags).toBe(F_NOTIF);
      }
      // An unparseable address is a TypeError; a valid one nobody listens on still sends (UDP).
      expect(() => harness!.ring.sendtoZc(dgramFd(sender), datagrams[0], 0, 10, 0, 0, port, 'not-an-ip', 60)).toThrow(TypeError);
      expect(() => harness!.ring.sendtoZc(dgramFd(sender), datagrams[0], 0, 10, 0, 0, 70000, '127.0.0.1', 60)).toThrow(RangeError);
    } finally {
      receiver.close();
      sender.close();
    }
  });

  it('sendtoZc to an IPv6 literal', async (ctx) => {
    const receiver = dgram.createSocket('udp6');
    const bound = await new Promise<boolean>((resolve) => {
      receiver.once('error', () => resolve(false));
      receiver.bind(0, '::1', () => resolve(true));
    });
    if (!bound) {
      receiver.close();
      ctx.skip();
      return;
    }
    const sender = dgram.createSocket('udp6');
    try {
      await new Promise<void>((resolve) => sender.bind(0, '::1', resolve));
      harness = new Harness();
      const message = pattern(3000, 8);
      const got = new Promise<Buffer>((resolve) => receiver.once('message', resolve));
      expect(harness.ring.sendtoZc(dgramFd(sender), message, 0, message.length, 0, 0, receiver.address().port, '::1', 61)).toBe(0);
      expect((await got).equals(message)).toBe(true);
      expect((await harness.settle(61)).first.res).toBe(message.length);
    } finally {
      receiver.close();
      sender.close();
    }
  });

  it('cancel: a send stuck on a peer that stopped reading', async () => {
    const c = native().constants;
    harness = new Harness();
    pair = await tcpPair();
    pair.server.pause(); // the peer stops reading: socket buffers fill up
    const fd = fdOf(pair.client);
    const big = Buffer.alloc(64 * 1024 * 1024, 1);
    expect(harness.ring.sendZc(fd, big, 0, big.length, c.MSG_WAITALL, c.IORING_SEND_ZC_REPORT_USAGE, 71)).toBe(0);
    harness.ring.submit();
    await delay(200);
    expect(harness.of(71)).toEqual([]); // cannot complete
    expect(harness.ring.cancel(71)).toBe(0);
    harness.ring.submit();
    await harness.waitFor(() => harness!.of(71).length > 0, 'result of the cancelled send');
    const cancelCqe = harness.cqes.find((x) => x.hi === c.CANCEL_TAG_HI && x.userData === 71);
    expect(cancelCqe?.res).toBe(0); // found and cancelled
    const [partial] = harness.of(71);
    // Part of it was sent before the cancel: MSG_WAITALL reports the partial count (not -ECANCELED), with F_MORE.
    expect(partial.res).toBeGreaterThan(0);
    expect(partial.res).toBeLessThan(big.length);
    expect(partial.flags & F_MORE).toBe(F_MORE);
    // Its notification waits: skbs still queued for the stalled peer reference the pages.
    await delay(100);
    expect(harness.of(71)).toHaveLength(1);

    // Once nothing fits, a send makes no progress and is cancelled with -ECANCELED. (Socket
    // buffers may still grow a little, so a few attempts may each send a part first.)
    let queued = partial.res;
    let cancelled: { first: { res: number; flags: number }; notif: { flags: number } | null } | null = null;
    const partials: number[] = [];
    for (let attempt = 0, ud = 72; attempt < 10 && !cancelled; attempt++, ud++) {
      expect(harness.ring.sendZc(fd, big, 0, 1024 * 1024, c.MSG_WAITALL, c.IORING_RECVSEND_POLL_FIRST, ud)).toBe(0);
      harness.ring.submit();
      await delay(50);
      expect(harness.of(ud)).toEqual([]);
      harness.ring.cancel(ud);
      harness.ring.submit();
      await harness.waitFor(() => harness!.of(ud).length > 0, `result of op ${ud}`);
      const [result] = harness.of(ud);
      expect(result.flags & F_MORE).toBe(F_MORE); // a notification follows in every case
      if (result.res === -c.errno.ECANCELED) {
        cancelled = await harness.settle(ud); // ...at once: nothing references its pages
      } else {
        expect(result.res).toBeGreaterThan(0);
        queued += result.res;
        partials.push(ud);
      }
    }
    expect(cancelled, 'a send with no progress was cancelled').not.toBeNull();
    expect(cancelled!.notif!.flags).toBe(F_NOTIF);

    // The peer reads again: the queued bytes drain and the held-back notifications arrive.
    const drained = collect(pair.server, queued);
    pair.server.resume();
    expect((await drained).length).toBe(queued);
    for (const ud of [71, ...partials]) expect((await harness.settle(ud)).notif!.flags).toBe(F_NOTIF);

    // Cancelling something that is not in flight: -ENOENT on the cancel's own CQE.
    harness.ring.cancel(12345);
    harness.ring.submit();
    await harness.waitFor(() => harness!.cqes.some((x) => x.hi === c.CANCEL_TAG_HI && x.userData === 12345), 'cancel CQE');
    expect(harness.cqes.find((x) => x.hi === c.CANCEL_TAG_HI && x.userData === 12345)!.res).toBe(-c.errno.ENOENT);
  });

  it('reports socket errors as -errno with F_MORE and a notification', async () => {
    const c = native().constants;
    harness = new Harness();
    pair = await tcpPair();
    const body = pattern(1024, 1);
    // Not a socket: a pipe.
    const pipe = native().pipe2(0) as [number, number];
    try {
      harness.ring.sendZc(pipe[1], body, 0, body.length, 0, 0, 81);
      // Bad zc flags.
      harness.ring.sendZc(fdOf(pair.client), body, 0, body.length, 0, 1 << 15, 82);
      harness.ring.submit();
      const notSocket = await harness.settle(81);
      expect(notSocket.first.res).toBe(-c.errno.ENOTSOCK);
      const badFlags = await harness.settle(82);
      expect(badFlags.first.res).toBe(-c.errno.EINVAL);
    } finally {
      native().closeFd(pipe[0]);
      native().closeFd(pipe[1]);
    }
  });
});
