// Provided-buffer rings and multishot receives on real loopback sockets: the bytes a peer sends
// arrive in the pool's buffers in order, buffers come back with recycleBuffer, a dry group ends
// the receive with -ENOBUFS (and nothing is lost: the bytes wait in the socket), and a receive
// ends with res 0 at the peer's FIN or -ECANCELED when cancelled.
import { afterEach, describe, expect, it } from 'vitest';

import { closeTestResources, delay, F_MORE, fdOf, Harness, native, pattern, sha256, skipUring, tcpPair, type Cqe, type TcpPair } from './helpers.js';

const ECANCELED = 125;
const ENOBUFS = 105;

describe.skipIf(skipUring)('provided-buffer rings and recvMultishot', () => {
  let harness: Harness | null = null;
  let pair: TcpPair | null = null;
  afterEach(async () => {
    ({ harness, pair } = await closeTestResources(harness, pair));
  });

  function bufferId(cqe: Cqe): number {
    const c = native().constants;
    expect(cqe.flags & c.IORING_CQE_F_BUFFER).toBe(c.IORING_CQE_F_BUFFER);
    return cqe.flags >>> c.IORING_CQE_BUFFER_SHIFT;
  }

  /**
   * Reads every data CQE of `ud` out of `pool`, recycling as it goes, until `bytes` arrived. A
   * receive that ran dry (-ENOBUFS, its last CQE) is armed again on `fd`: the bytes it could not
   * take are still in the socket. Returns the bytes and how often it ran dry.
   */
  async function receive(pool: Buffer, size: number, group: number, ud: number, fd: number, bytes: number): Promise<{ data: Buffer; dry: number }> {
    const h = harness!;
    const parts: Buffer[] = [];
    let seen = 0;
    let total = 0;
    let dry = 0;
    while (total < bytes) {
      await h.waitFor(() => h.of(ud).length > seen, `data for ${ud} (${total} of ${bytes})`);
      for (const cqe of h.of(ud).slice(seen)) {
        seen++;
        if (cqe.res === -ENOBUFS) {
          expect(cqe.flags & F_MORE).toBe(0);
          dry++;
          expect(h.ring.recvMultishot(fd, group, ud)).toBe(0);
          h.ring.submit();
          continue;
        }
        expect(cqe.res).toBeGreaterThan(0);
        expect(cqe.flags & F_MORE).toBe(F_MORE);
        const id = bufferId(cqe);
        parts.push(Buffer.from(pool.subarray(id * size, id * size + cqe.res)));
        total += cqe.res;
        expect(h.ring.recycleBuffer(group, id)).toBe(0);
      }
    }
    return { data: Buffer.concat(parts), dry };
  }

  it('validates its arguments', () => {
    harness = new Harness();
    const { ring } = harness;
    expect(() => ring.registerBufRing(0, Buffer.alloc(3 * 1024), 1024)).toThrow(RangeError); // 3 buffers
    expect(() => ring.registerBufRing(0, Buffer.alloc(1000), 1024)).toThrow(RangeError);
    expect(() => ring.registerBufRing(0, Buffer.alloc(1024), 0)).toThrow(RangeError);
    expect(() => ring.registerBufRing(70000, Buffer.alloc(1024), 1024)).toThrow(RangeError);
    expect(() => ring.registerBufRing(0, 'x' as unknown as Buffer, 1024)).toThrow(TypeError);
    expect(ring.registerBufRing(1, Buffer.alloc(4 * 1024), 1024)).toBe(0);
    expect(ring.registerBufRing(1, Buffer.alloc(4 * 1024), 1024)).toBe(-native().constants.errno.EEXIST);
    expect(() => ring.recycleBuffer(1, 4)).toThrow(RangeError);
    expect(ring.recycleBuffer(2, 0)).toBe(-native().constants.errno.ENOENT);
    expect(ring.unregisterBufRing(2)).toBe(-native().constants.errno.ENOENT);
    expect(ring.unregisterBufRing(1)).toBe(0);
    expect(ring.registerBufRing(1, Buffer.alloc(4 * 1024), 1024)).toBe(0);
  });

  it('receives a peer\'s bytes in order into the pool, through many recycles, and ends at its FIN', async () => {
    const size = 4096;
    const pool = Buffer.alloc(8 * size);
    harness = new Harness();
    pair = await tcpPair();
    pair.server.pause();
    expect(harness.ring.registerBufRing(3, pool, size)).toBe(0);
    const ud = 41;
    expect(harness.ring.recvMultishot(fdOf(pair.server), 3, ud)).toBe(0);
    expect(harness.ring.submit()).toBe(1);

    // 64 buffers' worth through an 8-buffer pool: only recycling keeps it going.
    const body = pattern(64 * size + 123, 5);
    pair.client.write(body);
    const { data } = await receive(pool, size, 3, ud, fdOf(pair.server), body.length);
    expect(sha256(data)).toBe(sha256(body));
    // Still armed: the last CQE so far has F_MORE.
    expect(harness.of(ud).at(-1)!.flags & F_MORE).toBe(F_MORE);

    const before = harness.of(ud).length;
    pair.client.end();
    await harness.waitFor(() => harness!.of(ud).length > before, 'the final CQE');
    const last = harness.of(ud).at(-1)!;
    expect(last.res).toBe(0);
    expect(last.flags & F_MORE).toBe(0);
  });

  it('ends with -ENOBUFS when the group runs dry; armed again, it goes on where it stopped', async () => {
    const size = 1024;
    const pool = Buffer.alloc(2 * size);
    harness = new Harness();
    pair = await tcpPair();
    pair.server.pause();
    expect(harness.ring.registerBufRing(0, pool, size)).toBe(0);
    const ud = 7;
    expect(harness.ring.recvMultishot(fdOf(pair.server), 0, ud)).toBe(0);
    harness.ring.submit();

    // More than the two buffers hold, and none recycled: the receive stops with -ENOBUFS.
    const body = pattern(10 * size, 2);
    pair.client.write(body);
    await harness.waitFor(() => harness!.of(ud).some((c) => !(c.flags & F_MORE)), 'the receive to run dry');
    const cqes = harness.of(ud);
    const last = cqes.at(-1)!;
    expect(last.res).toBe(-ENOBUFS);
    const parts: Buffer[] = [];
    for (const cqe of cqes.slice(0, -1)) {
      const id = bufferId(cqe);
      parts.push(Buffer.from(pool.subarray(id * size, id * size + cqe.res)));
      expect(harness.ring.recycleBuffer(0, id)).toBe(0);
    }
    const before = parts.reduce((n, p) => n + p.length, 0);
    expect(before).toBeLessThanOrEqual(2 * size);

    // Armed again: the rest was waiting in the socket, nothing lost or reordered.
    const again = 8;
    expect(harness.ring.recvMultishot(fdOf(pair.server), 0, again)).toBe(0);
    harness.ring.submit();
    const rest = await receive(pool, size, 0, again, fdOf(pair.server), body.length - before);
    expect(sha256(Buffer.concat([...parts, rest.data]))).toBe(sha256(body));
  });

  it('is cancelled by user_data with -ECANCELED and no F_MORE; unsent bytes stay in the socket', async () => {
    const size = 2048;
    const pool = Buffer.alloc(4 * size);
    harness = new Harness();
    pair = await tcpPair();
    pair.server.pause();
    expect(harness.ring.registerBufRing(0, pool, size)).toBe(0);
    const ud = 99;
    expect(harness.ring.recvMultishot(fdOf(pair.server), 0, ud)).toBe(0);
    harness.ring.submit();
    expect(harness.ring.cancel(ud)).toBe(0);
    harness.ring.submit();
    await harness.waitFor(() => harness!.of(ud).length > 0, 'the cancelled receive');
    expect(harness.of(ud)).toEqual([{ userData: ud, hi: 0, res: -ECANCELED, flags: 0 }]);

    // What the peer sends now is libuv's to read again.
    const body = pattern(5000, 4);
    const received = new Promise<Buffer>((resolve) => {
      const parts: Buffer[] = [];
      pair!.server.on('data', (d: Buffer) => {
        parts.push(d);
        if (Buffer.concat(parts).length >= body.length) resolve(Buffer.concat(parts));
      });
    });
    pair.server.resume();
    pair.client.write(body);
    expect(sha256(await received)).toBe(sha256(body));
  });

  it('takes back the ids JS queues in `recycled` after each callback, without a call per buffer', async () => {
    const size = 1024;
    const count = 4;
    const pool = Buffer.alloc(count * size);
    const recycled = new Uint16Array(count + 1);
    const ring = new (native().Ring)({}, (n) => {
      const a = ring.cqes;
      for (let i = 0; i < n; i++) {
        const res = a[i * 4 + 2];
        const flags = a[i * 4 + 3] >>> 0;
        if (res > 0) {
          const id = flags >>> native().constants.IORING_CQE_BUFFER_SHIFT;
          got.push(Buffer.from(pool.subarray(id * size, id * size + res)));
          recycled[++recycled[0]] = id; // handed back when this callback returns
        } else {
          ends.push(res);
        }
      }
    });
    const got: Buffer[] = [];
    const ends: number[] = [];
    ring.ref();
    try {
      pair = await tcpPair();
      pair.server.pause();
      expect(() => ring.registerBufRing(0, pool, size, new Uint16Array(count))).toThrow(RangeError);
      expect(() => ring.registerBufRing(0, pool, size, new Uint8Array(count + 1) as never)).toThrow(TypeError);
      expect(ring.registerBufRing(0, pool, size, recycled)).toBe(0);
      expect(ring.recvMultishot(fdOf(pair.server), 0, 5)).toBe(0);
      ring.submit();
      // Sixteen buffers' worth, written a piece at a time, through four buffers: only the queued
      // recycles keep the receive going (each piece fits the buffers the last callback freed).
      const body = pattern(16 * size, 11);
      for (let off = 0; off < body.length; off += size) {
        const before = got.length;
        pair.client.write(body.subarray(off, off + size));
        const deadline = Date.now() + 5000;
        while (got.length === before && Date.now() < deadline) await delay(2);
      }
      const deadline = Date.now() + 5000;
      while (Buffer.concat(got).length < body.length && Date.now() < deadline) await delay(5);
      expect(sha256(Buffer.concat(got))).toBe(sha256(body));
      expect(ends).toEqual([]); // never ran dry
      expect(recycled[0]).toBe(0);
    } finally {
      ring.unref();
      ring.close();
    }
  });
});
