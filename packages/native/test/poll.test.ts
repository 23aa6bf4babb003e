import fs from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { closeTestResources, collect, delay, fdOf, Harness, native, pattern, sha256, skipUring, tcpPair, type TcpPair } from './helpers.js';

const POLLOUT = 0x4;

describe.skipIf(skipUring)('pollAdd', () => {
  let harness: Harness | null = null;
  let pair: TcpPair | null = null;
  let pipe: [number, number] = [-1, -1];
  let nextUd = 5000;

  afterEach(async () => {
    ({ harness, pair } = await closeTestResources(harness, pair));
    for (const fd of pipe) if (fd >= 0) native().closeFd(fd);
    pipe = [-1, -1];
  });

  async function result(ud: number): Promise<number> {
    await harness!.waitFor(() => harness!.of(ud).length > 0, `op ${ud}`);
    return harness!.of(ud)[0].res;
  }

  it('rejects bad arguments', () => {
    harness = new Harness();
    expect(() => harness!.ring.pollAdd(-1, POLLOUT, 0, 1)).toThrow(RangeError);
    expect(() => harness!.ring.pollAdd(3, 0x10000, 0, 1)).toThrow(RangeError);
    expect(() => harness!.ring.pollAdd(3, POLLOUT, 256, 1)).toThrow(RangeError);
  });

  it('waits for a full socket slot to become writable, then a linked splice drains the pipe into it', async () => {
    const b = native();
    const c = b.constants;
    harness = new Harness({ fileSlots: 4 });
    pair = await tcpPair();
    expect(harness.ring.updateFile(1, fdOf(pair.client))).toBe(0);

    // A writable socket: the poll completes at once with POLLOUT in the mask.
    const ready = nextUd++;
    expect(harness.ring.pollAdd(1, POLLOUT, c.IOSQE_FIXED_FILE, ready)).toBe(0);
    harness.ring.submit();
    expect((await result(ready)) & POLLOUT).toBe(POLLOUT);

    // Fill the socket while the peer does not read, until the kernel refuses more (EAGAIN).
    pair.server.pause();
    const filler = pattern(64 * 1024, 3);
    let queued = 0;
    for (let full = false; !full;) {
      try {
        queued += fs.writeSync(fdOf(pair.client), filler);
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('EAGAIN');
        full = true;
      }
      if (!full) continue;
      // The peer's receive window may open a little later: fill again until it stays full.
      await delay(20);
      try {
        queued += fs.writeSync(fdOf(pair.client), filler);
        full = false;
      } catch {
        // still full
      }
    }

    pipe = b.pipe2(0) as [number, number];
    const body = pattern(200_000, 9);
    expect(b.setPipeSize(pipe[1], 256 * 1024)).toBeGreaterThan(body.length);
    fs.writeSync(pipe[1], body);

    const poll = nextUd++;
    const out = nextUd++;
    expect(harness.ring.pollAdd(1, POLLOUT, c.IOSQE_FIXED_FILE | c.IOSQE_IO_LINK, poll)).toBe(0);
    expect(harness.ring.splice(pipe[0], -1, 1, -1, body.length, 0, c.IOSQE_FIXED_FILE, out)).toBe(0);
    expect(harness.ring.submit()).toBe(2);
    await delay(100);
    expect(harness.of(poll)).toEqual([]);
    const received = collect(pair.server, queued + body.length, 30_000);
    pair.server.resume();
    expect((await result(poll)) & POLLOUT).toBe(POLLOUT);
    let moved = await result(out);
    // A splice into a non-blocking socket may still come back short: finish with unlinked retries.
    while (moved < body.length) {
      const ud = nextUd++;
      expect(harness.ring.splice(pipe[0], -1, 1, -1, body.length - moved, 0, c.IOSQE_FIXED_FILE, ud)).toBe(0);
      harness.ring.submit();
      const res = await result(ud);
      if (res === -c.errno.EAGAIN) {
        await delay(2);
        continue;
      }
      expect(res).toBeGreaterThan(0);
      moved += res;
    }
    const all = await received;
    expect(sha256(all.subarray(queued))).toBe(sha256(body));
    expect(harness.ring.updateFile(1, -1)).toBe(0);
  });

  it('a pending poll is cancelled by user_data', async () => {
    const b = native();
    const c = b.constants;
    harness = new Harness();
    pipe = b.pipe2(0) as [number, number];
    // The read end of an empty pipe is never readable: the poll can only end by cancellation.
    const ud = nextUd++;
    expect(harness.ring.pollAdd(pipe[0], 0x1, 0, ud)).toBe(0);
    harness.ring.submit();
    await delay(20);
    expect(harness.of(ud)).toEqual([]);
    expect(harness.ring.cancel(ud)).toBe(0);
    harness.ring.submit();
    expect(await result(ud)).toBe(-c.errno.ECANCELED);
  });
});
