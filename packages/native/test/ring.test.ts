import { spawnSync } from 'node:child_process';

import { afterEach, describe, expect, it } from 'vitest';

import {
  closeTestResources, collect, delay, F_MORE, F_NOTIF, fdOf, Harness, native, openFdCount, pattern, sha256, skipUring, tcpPair,
  type TcpPair,
} from './helpers.js';

const indexUrl = new URL('../index.js', import.meta.url).href;

function runChild(script: string, args: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const child = spawnSync(process.execPath, [...args, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}

describe.skipIf(skipUring)('Ring', () => {
  let harness: Harness | null = null;
  let pair: TcpPair | null = null;
  afterEach(async () => {
    ({ harness, pair } = await closeTestResources(harness, pair));
  });

  it('prefers SINGLE_ISSUER | COOP_TASKRUN | TASKRUN_FLAG and sizes the CQ at 4x', () => {
    harness = new Harness();
    const { ring } = harness;
    expect(ring.setupFlags).toEqual(expect.arrayContaining(['SINGLE_ISSUER', 'COOP_TASKRUN', 'TASKRUN_FLAG']));
    expect(ring.setupFlags).not.toContain('DEFER_TASKRUN');
    expect(ring.sqEntries).toBe(256);
    expect(ring.cqEntries).toBe(1024);
    expect(ring.overflow).toBe(0);
    expect(ring.cqes).toBeInstanceOf(Int32Array);
    expect(ring.cqes.length).toBe(1024 * 4);
    const small = new (native().Ring)({ entries: 100 }, () => {});
    expect(small.sqEntries).toBe(128); // rounded up to a power of two by the kernel
    expect(small.cqEntries).toBeGreaterThanOrEqual(2 * small.sqEntries);
    small.close();
  });

  for (const mode of ['auto', 'defer', 'coop', 'plain'] as const) {
    it(`delivers results and notifications in mode '${mode}'`, async () => {
      const c = native().constants;
      harness = new Harness({ mode, entries: 64 });
      if (mode === 'defer') expect(harness.ring.setupFlags).toContain('DEFER_TASKRUN');
      if (mode === 'coop') expect(harness.ring.setupFlags).toEqual(expect.arrayContaining(['SINGLE_ISSUER', 'COOP_TASKRUN']));
      if (mode === 'plain') expect(harness.ring.setupFlags).toEqual(['CQSIZE']);
      pair = await tcpPair();
      for (let round = 0; round < 5; round++) {
        const body = pattern(256 * 1024 + round, round + 1);
        const received = collect(pair.server, body.length);
        expect(harness.ring.sendZc(fdOf(pair.client), body, 0, body.length, c.MSG_WAITALL, c.IORING_SEND_ZC_REPORT_USAGE, 100 + round)).toBe(0);
        expect(harness.ring.submit()).toBe(1);
        const { first, notif } = await harness.settle(100 + round);
        expect(first.res).toBe(body.length);
        expect(notif!.flags).toBe(F_NOTIF);
        expect(sha256(await received)).toBe(sha256(body));
      }
    });
  }

  it('validates options and arguments with TypeError / RangeError', () => {
    const { Ring } = native();
    expect(() => new Ring({}, undefined as never)).toThrow(TypeError);
    expect(() => new Ring('x' as never, () => {})).toThrow(TypeError);
    expect(() => new Ring({ mode: 'bogus' as never }, () => {})).toThrow(TypeError);
    expect(() => new Ring({ entries: 0 }, () => {})).toThrow(RangeError);
    expect(() => new Ring({ entries: 1.5 }, () => {})).toThrow(RangeError);
    expect(() => new Ring({ entries: '8' as never }, () => {})).toThrow(TypeError);

    harness = new Harness();
    const { ring } = harness;
    const buf = Buffer.alloc(16);
    expect(() => ring.sendZc('3' as never, buf, 0, 1, 0, 0, 1)).toThrow(TypeError);
    expect(() => ring.sendZc(3, 'abc' as never, 0, 1, 0, 0, 1)).toThrow(TypeError);
    expect(() => ring.sendZc(3, new ArrayBuffer(4) as never, 0, 1, 0, 0, 1)).toThrow(TypeError);
    expect(() => ring.sendZc(3, buf, 10, 7, 0, 0, 1)).toThrow(RangeError);
    expect(() => ring.sendZc(3, buf, -1, 1, 0, 0, 1)).toThrow(RangeError);
    expect(() => ring.sendZc(3, buf, 0, 1, 0, 0, -1)).toThrow(RangeError);
    expect(() => ring.sendZc(3, buf, 0, 1, 0, 0, 2 ** 32)).toThrow(RangeError);
    expect(() => ring.sendZc(3, buf, 0, 1, 0, 0, 0.5)).toThrow(RangeError);
    expect(() => ring.sendZc(-1, buf, 0, 1, 0, 0, 1)).toThrow(RangeError);
    expect(() => ring.sendZc(3, buf, 0, 1, 0, 0)).toThrow(TypeError); // missing userData
    expect(() => ring.send(3, buf, 0, 17, 0, 1)).toThrow(RangeError);
    expect(() => ring.sendmsgZc(3, buf as never, 0, 0, 1)).toThrow(TypeError);
    expect(() => ring.sendmsgZc(3, [], 0, 0, 1)).toThrow(RangeError);
    expect(() => ring.sendmsgZc(3, [buf, {} as never], 0, 0, 1)).toThrow(TypeError);
    expect(() => ring.sendtoZc(3, buf, 0, 1, 0, 0, 80, 5 as never, 1)).toThrow(TypeError);
    expect(() => ring.splice(3, -2, 4, -1, 1, 0, 0, 1)).toThrow(RangeError);
    expect(() => ring.splice(3, -1, 4, -1, 1, 0, 256, 1)).toThrow(RangeError);
    expect(() => ring.cancel('1' as never)).toThrow(TypeError);
    expect(() => ring.updateBuffer(0, 'x' as never)).toThrow(TypeError);
    expect(() => ring.updateFile(0, -2)).toThrow(RangeError);
    try {
      ring.sendZc(3, buf, 0, 1, 0, 0, -1);
    } catch (error) {
      expect((error as { code?: string }).code).toBe('ERR_OUT_OF_RANGE');
    }
    // Views of every kind are accepted: the byte range is what counts.
    expect(ring.sendZc(1_000_000, new Float64Array(4), 8, 24, 0, 0, 1)).toBe(0);
    expect(ring.sendZc(1_000_000, new DataView(new ArrayBuffer(8)), 0, 8, 0, 0, 2)).toBe(0);
    expect(() => ring.sendZc(1_000_000, new Float64Array(4), 8, 25, 0, 0, 3)).toThrow(RangeError);
  });

  it('uses the full 32 bits of userData, and a bad fd completes with -EBADF', async () => {
    harness = new Harness();
    const buf = Buffer.alloc(8);
    expect(harness.ring.sendZc(1_000_000, buf, 0, 8, 0, 0, 0xffffffff)).toBe(0);
    harness.ring.submit();
    await harness.waitFor(() => harness!.of(0xffffffff).length > 0, 'CQE');
    expect(harness.of(0xffffffff)[0].res).toBe(-native().constants.errno.EBADF);
  });

  it('returns -EBADFD from every op after close(), which is idempotent', () => {
    const { errno } = native().constants;
    const { Ring } = native();
    const ring = new Ring({}, () => {});
    ring.ref();
    ring.close();
    ring.close();
    ring.ref();
    ring.unref();
    const buf = Buffer.alloc(8);
    expect(ring.sendZc(3, buf, 0, 8, 0, 0, 1)).toBe(-errno.EBADFD);
    expect(ring.sendZcFixed(3, 0, buf, 0, 8, 0, 0, 1)).toBe(-errno.EBADFD);
    expect(ring.send(3, buf, 0, 8, 0, 1)).toBe(-errno.EBADFD);
    expect(ring.sendmsgZc(3, [buf], 0, 0, 1)).toBe(-errno.EBADFD);
    expect(ring.sendtoZc(3, buf, 0, 8, 0, 0, 9, '127.0.0.1', 1)).toBe(-errno.EBADFD);
    expect(ring.splice(3, -1, 4, -1, 8, 0, 0, 1)).toBe(-errno.EBADFD);
    expect(ring.cancel(1)).toBe(-errno.EBADFD);
    expect(ring.registerBufferSlots(4)).toBe(-errno.EBADFD);
    expect(ring.updateBuffer(0, buf)).toBe(-errno.EBADFD);
    expect(ring.registerFileSlots(4)).toBe(-errno.EBADFD);
    expect(ring.updateFile(0, 1)).toBe(-errno.EBADFD);
    expect(ring.registerBufRing(0, Buffer.alloc(1024), 1024)).toBe(-errno.EBADFD);
    expect(ring.recycleBuffer(0, 0)).toBe(-errno.EBADFD);
    expect(ring.unregisterBufRing(0)).toBe(-errno.EBADFD);
    expect(ring.recvMultishot(3, 0, 1)).toBe(-errno.EBADFD);
    expect(ring.submit()).toBe(-errno.EBADFD);
    expect(ring.setupFlags.length).toBeGreaterThan(0);
    expect(ring.overflow).toBe(0);
    // Arguments are still checked on a closed ring.
    expect(() => ring.sendZc(3, buf, 0, 9, 0, 0, 1)).toThrow(RangeError);
  });

  it('closing releases every descriptor', () => {
    const before = openFdCount();
    const rings = ['auto', 'coop', 'plain', 'defer'].map((mode) => new (native().Ring)({ mode: mode as never }, () => {}));
    expect(openFdCount()).toBeGreaterThan(before);
    for (const r of rings) r.close();
    expect(openFdCount()).toBe(before);
  });

  it('survives close() from inside its own completion callback', async () => {
    pair = await tcpPair();
    const { Ring, constants } = native();
    let calls = 0;
    let closedResult = 0;
    const done = new Promise<void>((resolve) => {
      const ring = new Ring({}, () => {
        calls++;
        ring.close();
        closedResult = ring.submit();
        setTimeout(resolve, 50);
      });
      ring.ref();
      const buf = Buffer.alloc(1024);
      for (let i = 0; i < 50; i++) ring.send(fdOf(pair!.client), buf, 0, buf.length, 0, i);
      ring.submit();
    });
    await done;
    expect(calls).toBe(1);
    expect(closedResult).toBe(-constants.errno.EBADFD);
  });

  it('closes with a send still in flight without hanging or leaking', async () => {
    const before = openFdCount();
    pair = await tcpPair();
    pair.server.pause();
    const ring = new (native().Ring)({}, () => {});
    ring.ref();
    const big = Buffer.alloc(32 * 1024 * 1024);
    expect(ring.sendZc(fdOf(pair.client), big, 0, big.length, native().constants.MSG_WAITALL, 0, 1)).toBe(0);
    expect(ring.submit()).toBe(1);
    await delay(50);
    ring.close();
    expect(ring.submit()).toBe(-native().constants.errno.EBADFD);
    await pair.close();
    pair = null;
    await delay(20);
    expect(openFdCount()).toBe(before);
  });

  it('counts CQ overflow and still delivers every CQE', async () => {
    harness = new Harness({ entries: 8 }); // CQ of 32
    pair = await tcpPair();
    const fd = fdOf(pair.client);
    const buf = Buffer.from('x');
    const n = 200;
    const received = collect(pair.server, n);
    for (let i = 0; i < n; i++) expect(harness.ring.send(fd, buf, 0, 1, 0, i)).toBe(0); // SQ full: auto-submits
    harness.ring.submit();
    await harness.waitFor(() => harness!.cqes.length >= n, `${n} CQEs`);
    expect((await received).length).toBe(n);
    expect(new Set(harness.cqes.map((c) => c.userData)).size).toBe(n);
    expect(harness.cqes.every((c) => c.res === 1)).toBe(true);
    expect(harness.ring.overflow).toBeGreaterThan(0);
  });

  it('delivers more CQEs than the shared array holds in several callbacks', async () => {
    harness = new Harness({ entries: 4096 });
    pair = await tcpPair();
    const fd = fdOf(pair.client);
    const buf = Buffer.from('y');
    const n = 3000;
    const received = collect(pair.server, n);
    for (let i = 0; i < n; i++) harness.ring.send(fd, buf, 0, 1, 0, i);
    harness.ring.submit();
    await harness.waitFor(() => harness!.cqes.length >= n, `${n} CQEs`);
    expect(harness.callbacks).toBeGreaterThanOrEqual(3);
    expect((await received).length).toBe(n);
    expect(harness.ring.overflow).toBe(0);
  });

  it('runs microtasks queued by the callback before the next callback', async () => {
    pair = await tcpPair();
    const order: string[] = [];
    const { Ring } = native();
    await new Promise<void>((resolve) => {
      let seen = 0;
      const ring = new Ring({ entries: 1024 }, (count) => {
        order.push(`cb${count > 0 ? '' : '0'}`);
        queueMicrotask(() => order.push('micro'));
        seen += count;
        if (seen >= 2000) {
          ring.close();
          resolve();
        }
      });
      ring.ref();
      const buf = Buffer.from('z');
      for (let i = 0; i < 2000; i++) ring.send(fdOf(pair!.client), buf, 0, 1, 0, i);
      ring.submit();
    });
    for (let i = 0; i + 1 < order.length; i += 2) expect(order.slice(i, i + 2)).toEqual(['cb', 'micro']);
  });

  it('routes an exception thrown by the callback to uncaughtException', () => {
    const script = `
      import { load } from ${JSON.stringify(indexUrl)};
      import net from 'node:net';
      const { Ring } = load().binding;
      process.on('uncaughtException', (e) => { console.log('caught:' + e.message); ring.close(); srv.close(); sock.destroy(); });
      const ring = new Ring({}, () => { throw new Error('boom'); });
      ring.ref();
      const srv = net.createServer((s) => s.resume()).listen(0, '127.0.0.1');
      let sock;
      srv.on('listening', () => {
        sock = net.connect(srv.address().port, '127.0.0.1', () => {
          ring.send(sock._handle.fd, Buffer.from('a'), 0, 1, 0, 1);
          ring.submit();
        });
      });`;
    const { status, stdout, stderr } = runChild(script);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout.trim()).toBe('caught:boom');
  });

  it('closes abandoned rings when they are garbage collected', () => {
    const script = `
      import { load } from ${JSON.stringify(indexUrl)};
      import fs from 'node:fs';
      const { Ring } = load().binding;
      const count = () => fs.readdirSync('/proc/self/fd').length;
      const before = count();
      (() => { for (let i = 0; i < 16; i++) { const r = new Ring({}, () => r); if (i % 2) r.ref(); r.unref(); } })();
      const during = count();
      for (let i = 0; i < 20 && count() > before; i++) {
        globalThis.gc();
        await new Promise((resolve) => setImmediate(resolve));
      }
      console.log(JSON.stringify({ before, during, after: count() }));`;
    const { status, stdout, stderr } = runChild(script, ['--expose-gc']);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const { before, during, after } = JSON.parse(stdout);
    expect(during).toBeGreaterThanOrEqual(before + 16); // a ring fd each (COOP_TASKRUN: no eventfd)
    expect(after).toBe(before);
  });

  it('cleans up when a worker thread holding a ref\'d ring is terminated or exits', () => {
    // Eval workers inherit --input-type=module from the parent, so this is ESM.
    const workerCode = `
      import { parentPort, workerData } from 'node:worker_threads';
      import { load } from ${JSON.stringify(indexUrl)};
      const { Ring } = load().binding;
      const ring = new Ring({}, () => {});
      ring.ref(); // keeps the worker's loop alive
      const idle = new Ring({ mode: 'coop' }, () => {});
      parentPort.postMessage('ready');
      if (workerData === 'exit') setTimeout(() => process.exit(3), 20);`;
    const script = `
      import { Worker } from 'node:worker_threads';
      import fs from 'node:fs';
      // Count only ring and eventfd descriptors: Node's own workers open and close others.
      const count = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
        try { return /io_uring|eventfd/.test(fs.readlinkSync('/proc/self/fd/' + fd)); } catch { return false; }
      }).length;
      const before = count();
      const codes = [];
      let peak = 0;
      for (const how of ['terminate', 'exit', 'terminate']) {
        const worker = new Worker(${JSON.stringify(workerCode)}, { eval: true, workerData: how });
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        await new Promise((resolve) => worker.once('message', resolve));
        peak = Math.max(peak, count());
        if (how === 'terminate') await worker.terminate();
        codes.push(await exited);
      }
      console.log(JSON.stringify({ before, peak, after: count(), codes }));`;
    const { status, stdout, stderr } = runChild(script);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const { before, peak, after, codes } = JSON.parse(stdout);
    expect(codes).toEqual([1, 3, 1]);
    expect(peak).toBeGreaterThanOrEqual(before + 3); // two rings and an eventfd (libuv has its own too)
    expect(after).toBe(before);
  });

  it('keeps the event loop alive only while ref\'d', () => {
    const script = `
      import { load } from ${JSON.stringify(indexUrl)};
      const { Ring } = load().binding;
      const ring = new Ring({}, () => {});
      ring.ref();
      ring.unref();
      setTimeout(() => console.log('exited normally'), 10);`;
    const { status, stdout } = runChild(script);
    expect(status).toBe(0);
    expect(stdout.trim()).toBe('exited normally');
  });

  it('sendmsgZc/sendtoZc leave nothing queued when they return', async () => {
    harness = new Harness({ entries: 4 });
    pair = await tcpPair();
    const fd = fdOf(pair.client);
    const c = native().constants;
    const buf = Buffer.from('0123456789');
    const received = collect(pair.server, 60);
    // Three unsubmitted sends, then a sendmsgZc that submits all four.
    for (let i = 0; i < 3; i++) harness.ring.send(fd, buf, 0, 10, 0, 200 + i);
    expect(harness.ring.sendmsgZc(fd, [buf, buf, buf], 0, 0, 203)).toBe(0);
    expect(harness.ring.submit()).toBe(0);
    await harness.settle(203);
    expect((await received).toString()).toBe('0123456789'.repeat(6));
    expect(harness.of(203)[0].flags & F_MORE).toBe(F_MORE);
    await delay(10);
  });
});
