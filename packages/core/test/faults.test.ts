// Fault injection. Through the backend seam (FakeRing): every errno on a first CQE with and
// without F_MORE, short sends, late notifications, CQ overflow, -ENOMEM on buffer registration,
// a ring that fails to open or stops submitting. On the real kernel where the fault can be
// provoked: RLIMIT_MEMLOCK without CAP_IPC_LOCK, fd exhaustion at ring creation, a tiny CQ.
// Each must end in a clean error or a fallback, with nothing leaked.
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Sender, ZcSendError, type SenderStats } from '../src/index.js';
import { FakeRing } from '../src/testing.js';
import { bytes, fakeSender, tick, track } from './fake.js';
import { MODE, URING, randomBytes, receive, sha256, tcpPair, waitFor, type TcpPair } from './helpers.js';

const { ECANCELED, ENOMEM, EOPNOTSUPP, EBUSY, EBADF } = osConstants.errno;
const FD = 700;
const KiB = 1024;
const MiB = 1 << 20;

const setup = (options: ConstructorParameters<typeof Sender>[0] = {}, fake: ConstructorParameters<typeof FakeRing>[1] = {}) =>
  fakeSender({ adaptive: false, chunkSize: 64 * KiB, threshold: 0 }, options, fake);

function quiet(stats: SenderStats): string | null {
  if (stats.inFlightOps !== 0) return `inFlightOps ${stats.inFlightOps}`;
  if (stats.pinnedBytes !== 0) return `pinnedBytes ${stats.pinnedBytes}`;
  if (stats.pendingNotifications !== 0) return `pendingNotifications ${stats.pendingNotifications}`;
  if (stats.opsReleased !== stats.opsSubmitted) return `released ${stats.opsReleased} of ${stats.opsSubmitted} ops`;
  return null;
}

/**
 * Every errno Linux defines (1-133), named where Node knows the name, plus kernel-internal codes
 * that must never reach user space but would be handled the same if they did (ERESTARTSYS...).
 */
const errnoNames = new Map(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));
const ERRNOS: Array<[string, number]> = [
  ...Array.from({ length: 133 }, (_, i): [string, number] => [errnoNames.get(i + 1) ?? `errno ${i + 1}`, i + 1]),
  ['ERESTARTSYS', 512],
  ['ERESTARTNOINTR', 513],
  ['ERESTARTNOHAND', 514],
  ['ERESTART_RESTARTBLOCK', 516],
  ['ENOTSUPP', 524],
  ['EIOCBQUEUED', 529],
  ['MAX_ERRNO', 4095],
];

/** Completes every submitted send op in full (with its notification for SEND_ZC), until none is left. */
async function completeAll(ring: FakeRing): Promise<void> {
  for (let guard = 0; guard < 1000; guard++) {
    const open = ring.submitted().filter((s) => (s.op === 'sendZc' || s.op === 'sendZcFixed' || s.op === 'send') && !(s as { done?: boolean }).done);
    if (open.length === 0) return;
    for (const sqe of open) {
      (sqe as { done?: boolean }).done = true;
      if (sqe.op === 'send') ring.first(sqe.userData, sqe.length, false);
      else ring.first(sqe.userData, sqe.length).notif(sqe.userData);
    }
    ring.flush();
    await tick();
  }
}

/** Drives the fake ring until the head send settles, completing plain retries as the kernel would. */
async function completePlainRetries(ring: FakeRing, upTo = 10): Promise<void> {
  for (let i = 0; i < upTo; i++) {
    const open = ring.submitted('send').filter((s) => !(s as { done?: boolean }).done);
    if (open.length === 0) return;
    for (const sqe of open) {
      (sqe as { done?: boolean }).done = true;
      ring.first(sqe.userData, sqe.length, false).flush();
    }
    await tick();
  }
}

describe('first-CQE errors (fake ring)', () => {
  for (const more of [true, false]) {
    it(`every errno ${more ? 'with' : 'without'} F_MORE ends in a typed error or a plain-send fallback, and releases only when the kernel let go`, async () => {
      const wrong: string[] = [];
      for (const [name, errno] of ERRNOS) {
        const { sender, ring } = setup();
        const data = bytes(150 * KiB, errno);
        const h = sender.send(FD, data);
        const behind = sender.send(FD, bytes(10 * KiB, 2));
        const sent = track(h.sent);
        const released = track(h.released);
        const zc = ring.submitted('sendZc')[0]!;
        ring.first(zc.userData, -errno, more).flush();
        await tick();
        const fallback = errno === ENOMEM || errno === EOPNOTSUPP;
        if (fallback) {
          // The same range again with plain sends; the SEND_ZC buffer stays pinned until its notification.
          const plain = ring.submitted('send')[0];
          if (!plain || plain.offset !== 0) wrong.push(`${name}: no plain retry of the same range`);
          await completePlainRetries(ring);
        }
        await tick();
        if (more && released.done) wrong.push(`${name}: released before the notification`);
        if (more) ring.notif(zc.userData).flush();
        await tick();
        await tick();
        if (!released.done) wrong.push(`${name}: never released`);
        if (fallback) {
          if (sent.value !== data.length) wrong.push(`${name}: fallback did not send every byte (${String(sent.error)})`);
          await completePlainRetries(ring);
          const b = await behind.sent.catch((e: unknown) => e);
          if (b !== 10 * KiB) wrong.push(`${name}: the send queued behind failed after a successful fallback`);
        } else {
          const err = sent.error as ZcSendError | undefined;
          const code = errno === ECANCELED ? 'ZCSEND_ERR_CANCELLED' : 'ZCSEND_ERR_SEND_FAILED';
          if (!(err instanceof ZcSendError) || err.code !== code || err.errno !== errno) {
            wrong.push(`${name}: sent settled with ${String(sent.error ?? sent.value)}`);
          }
          // The byte stream is broken: what was queued behind fails too, and nothing else reaches the ring.
          const b = await behind.sent.then(
            () => 'resolved',
            (e: ZcSendError) => e.code,
          );
          if (b !== code) wrong.push(`${name}: the send queued behind ${b}`);
          if (ring.submitted().some((s) => s.op !== 'sendZc' && s.op !== 'cancel')) wrong.push(`${name}: more SQEs after the failure`);
        }
        await sender.close();
        const q = quiet(sender.stats());
        if (q) wrong.push(`${name}: not quiet: ${q}`);
        if (sender.stats().violations !== 0) wrong.push(`${name}: ${sender.stats().violations} violations`);
        if (!ring.closed) wrong.push(`${name}: ring not closed by close()`);
      }
      expect(wrong).toEqual([]);
      expect(ERRNOS.length).toBe(140);
    });
  }

  it('an error on a later chunk of a socket send destroys the socket (its framing is broken) and reports the partial count', async () => {
    const { sender, ring } = setup();
    const pair = await tcpPair();
    try {
      const h = sender.send(pair.sender, bytes(200 * KiB));
      await waitFor(() => ring.submitted('sendZc').length === 1, 5000, 'the first op');
      const first = ring.submitted('sendZc')[0]!;
      ring.first(first.userData, first.length).flush();
      const second = ring.submitted('sendZc')[1]!;
      ring.first(second.userData, -osConstants.errno.EPIPE, true).flush();
      await expect(h.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', errno: osConstants.errno.EPIPE });
      expect(pair.sender.destroyed).toBe(true);
      ring.notif(first.userData).notif(second.userData).flush();
      const report = await h.released;
      expect(report).toMatchObject({ bytes: first.length, error: { code: 'ZCSEND_ERR_SEND_FAILED' } });
      await sender.close();
      expect(quiet(sender.stats())).toBeNull();
    } finally {
      pair.close();
    }
  });
});

describe('short sends (fake ring)', () => {
  it('resubmits every short remainder in order until the body is out, byte-exact', async () => {
    const { sender, ring } = setup({ chunkSize: 32 * KiB });
    const data = bytes(300 * KiB + 17, 9);
    const h = sender.send(FD, data);
    const wire: Uint8Array[] = [];
    let step = 0;
    for (let guard = 0; guard < 10_000; guard++) {
      const open = ring.submitted('sendZc').filter((s) => !(s as { seen?: boolean }).seen);
      if (open.length === 0) break;
      expect(open).toHaveLength(1); // one op in flight per socket
      const sqe = open[0]! as (typeof open)[0] & { seen?: boolean };
      sqe.seen = true;
      // Accept 1 byte, a prime, half, or everything, in turn.
      const accept = Math.max(1, Math.min(sqe.length, [1, 997, Math.ceil(sqe.length / 2), sqe.length][step++ % 4]!));
      wire.push(sqe.buf!.subarray(0, accept));
      ring.first(sqe.userData, accept).notif(sqe.userData).flush();
    }
    expect(await h.sent).toBe(data.length);
    expect(Buffer.concat(wire).equals(Buffer.from(data))).toBe(true);
    const report = await h.released;
    expect(report.ops).toBeGreaterThan(10);
    expect(quiet(sender.stats())).toBeNull();
  });

  it('a short send followed by an error fails with the partial count; notifications still gate the release', async () => {
    const { sender, ring } = setup();
    const h = sender.send(FD, bytes(50 * KiB));
    const a = ring.submitted('sendZc')[0]!;
    ring.first(a.userData, 1000).flush();
    const b = ring.submitted('sendZc')[1]!;
    expect(b).toMatchObject({ offset: 1000, length: 50 * KiB - 1000 });
    ring.first(b.userData, -osConstants.errno.ECONNRESET, true).flush();
    await expect(h.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED' });
    const released = track(h.released);
    ring.notif(b.userData).flush();
    await tick();
    expect(released.done).toBe(false); // a's notification is still owed
    ring.notif(a.userData).flush();
    expect((await h.released).bytes).toBe(1000);
    expect(quiet(sender.stats())).toBeNull();
  });

  it('a first CQE of 0 bytes fails the send instead of looping', async () => {
    const { sender, ring } = setup();
    const h = sender.send(FD, bytes(20 * KiB));
    const a = ring.submitted('sendZc')[0]!;
    ring.first(a.userData, 0).notif(a.userData).flush();
    await expect(h.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED' });
    await h.released;
    expect(ring.submitted('sendZc')).toHaveLength(1);
    expect(quiet(sender.stats())).toBeNull();
  });

  it('a first CQE claiming more bytes than asked is a contract violation, not a crash or an over-count', async () => {
    const { sender, ring } = setup();
    const data = bytes(20 * KiB);
    const h = sender.send(FD, data);
    const a = ring.submitted('sendZc')[0]!;
    ring.first(a.userData, a.length + 4096).notif(a.userData).flush();
    const outcome = await h.sent.then(
      (n) => n,
      (e: ZcSendError) => e.code,
    );
    await h.released;
    expect(sender.stats().violations).toBeGreaterThan(0);
    expect(outcome === data.length || outcome === 'ZCSEND_ERR_PROTOCOL').toBe(true);
    expect(sender.stats().bytesSent).toBeLessThanOrEqual(data.length);
    expect(quiet(sender.stats())).toBeNull();
  });
});

describe('late notifications (fake ring)', () => {
  it('a notification that comes after many later sends finished releases only its own send', async () => {
    const { sender, ring } = setup();
    const first = sender.send(FD, bytes(10 * KiB, 1));
    const firstOp = ring.submitted('sendZc')[0]!;
    ring.first(firstOp.userData, firstOp.length).flush();
    const firstReleased = track(first.released);
    const later = Array.from({ length: 20 }, (_, i) => sender.send(FD, bytes(5 * KiB, i + 2)));
    for (let i = 0; i < 20; i++) {
      const sqe = ring.submitted('sendZc')[i + 1]!;
      ring.first(sqe.userData, sqe.length).notif(sqe.userData).flush();
    }
    await Promise.all(later.map((h) => h.released));
    expect(firstReleased.done).toBe(false);
    expect(sender.stats().pinnedBytes).toBe(10 * KiB);
    ring.notif(firstOp.userData).flush();
    await first.released;
    expect(quiet(sender.stats())).toBeNull();
  });

  it('notifications after the socket closed: cancel, -ECANCELED, then notifications; close() waits for them all', async () => {
    const { sender, ring } = setup();
    const pair = await tcpPair();
    try {
      const h = sender.send(pair.sender, bytes(200 * KiB));
      await waitFor(() => ring.submitted('sendZc').length === 1, 5000, 'the first op');
      const a = ring.submitted('sendZc')[0]!;
      ring.first(a.userData, a.length).flush();
      const b = ring.submitted('sendZc')[1]!;
      pair.sender.destroy();
      await waitFor(() => ring.submitted('cancel').length === 1, 5000, 'the cancel');
      expect(ring.submitted('cancel')[0]!.userData).toBe(b.userData);
      await expect(h.sent).rejects.toMatchObject({ code: expect.stringMatching(/^ZCSEND_ERR_(SOCKET_CLOSED|CANCELLED)$/) });
      const closed = track(sender.close());
      ring.cancelDone(b.userData).first(b.userData, -ECANCELED, true).flush();
      await tick();
      expect(closed.done).toBe(false);
      expect(sender.stats().pinnedBytes).toBe(a.length + b.length);
      ring.notif(b.userData).flush();
      await tick();
      expect(closed.done).toBe(false);
      ring.notif(a.userData).flush();
      await tick();
      await tick();
      expect(closed.done).toBe(true);
      expect(quiet(sender.stats())).toBeNull();
      expect(sender.stats().violations).toBe(0);
      expect(ring.closed).toBe(true);
    } finally {
      pair.close();
    }
  });

  it('destroy() with notifications outstanding rejects nothing twice and resolves only after the last one', async () => {
    const { sender, ring } = setup();
    const hs = [1, 2, 3].map((i) => sender.send(FD + i, bytes(8 * KiB, i)));
    const sqes = ring.submitted('sendZc');
    ring.first(sqes[0]!.userData, sqes[0]!.length).flush(); // sent, notification owed
    const destroyed = track(sender.destroy());
    expect(ring.submitted('cancel').map((s) => s.userData).sort()).toEqual([sqes[1]!.userData, sqes[2]!.userData].sort());
    expect(await hs[0]!.sent).toBe(8 * KiB);
    await expect(hs[1]!.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SENDER_CLOSED' });
    for (const s of sqes.slice(1)) ring.first(s.userData, -ECANCELED, true).flush();
    await tick();
    expect(destroyed.done).toBe(false);
    for (const s of sqes) ring.notif(s.userData).flush();
    await tick();
    await tick();
    expect(destroyed.done).toBe(true);
    expect(quiet(sender.stats())).toBeNull();
  });
});

describe('CQ overflow (fake ring)', () => {
  it('is counted and published once per change; completions that arrive later still settle every send', async () => {
    const { sender, ring } = setup();
    const events: unknown[] = [];
    const onViolation = (m: unknown) => events.push(m);
    diagnostics.subscribe('zcsend:violation', onViolation);
    try {
      const hs = Array.from({ length: 8 }, (_, i) => sender.send(FD + i, bytes(4 * KiB, i)));
      const sqes = ring.submitted('sendZc');
      // The CQ overflowed: half the completions come now, the rest after the kernel flushes its backlog.
      ring.overflow = 3;
      for (const s of sqes.slice(0, 4)) ring.first(s.userData, s.length).notif(s.userData);
      ring.flush();
      expect(sender.stats().cqOverflows).toBe(3);
      expect(events).toEqual([expect.objectContaining({ kind: 'cq-overflow', overflow: 3 })]);
      ring.cqe(999_999, 0, 0).flush(); // no new overflow: no new event (the stray CQE is its own violation)
      expect(events.filter((e) => (e as { kind: string }).kind === 'cq-overflow')).toHaveLength(1);
      for (const s of sqes.slice(4)) ring.first(s.userData, s.length).notif(s.userData);
      ring.flush();
      const reports = await Promise.all(hs.map((h) => h.released));
      expect(reports.every((r) => r.error === null && r.bytes === 4 * KiB)).toBe(true);
      expect(quiet(sender.stats())).toBeNull();
    } finally {
      diagnostics.unsubscribe('zcsend:violation', onViolation);
    }
  });
});

describe('-ENOMEM on buffer registration (fake ring)', () => {
  it('registering the table fails: no slot, nothing pinned, the buffer still goes out as an ordinary send', async () => {
    const { sender, ring } = setup({}, { failRegisterWith: -ENOMEM });
    const data = Buffer.allocUnsafeSlow(64 * KiB).fill(3);
    expect(sender.registerBuffer(data)).toBe(-1);
    const h = sender.send(FD, data);
    const sqe = ring.submitted('sendZc')[0]!;
    ring.first(sqe.userData, sqe.length).notif(sqe.userData).flush();
    expect(await h.sent).toBe(data.length);
    expect(quiet(sender.stats())).toBeNull();
  });

  it('registering one buffer fails (RLIMIT_MEMLOCK): counted as a memlock fallback; slots registered before keep working', async () => {
    const { sender, ring } = setup();
    const good = Buffer.allocUnsafeSlow(64 * KiB).fill(1);
    const slot = sender.registerBuffer(good);
    expect(slot).toBeGreaterThanOrEqual(0);
    ring.options.failRegisterWith = -ENOMEM;
    const big = Buffer.allocUnsafeSlow(256 * KiB).fill(2);
    expect(sender.registerBuffer(big)).toBe(-1);
    expect(sender.stats().fallbacks.memlock).toBe(1);
    const a = sender.send(FD, good.subarray(100, 60_000), { fixedBuffer: slot });
    const b = sender.send(FD + 1, big);
    expect(ring.submitted('sendZcFixed')[0]).toMatchObject({ bufIndex: slot, offset: 100 });
    expect(ring.submitted('sendZc')[0]).toMatchObject({ fd: FD + 1, offset: 0 });
    await completeAll(ring);
    expect(ring.submitted('sendZcFixed')).toHaveLength(1);
    expect(await a.sent).toBe(60_000 - 100);
    expect(await b.sent).toBe(big.length);
    ring.options.failRegisterWith = undefined;
    sender.unregisterBuffer(slot);
    await sender.close();
    expect(quiet(sender.stats())).toBeNull();
  });
});

describe('ring failures at start and mid-run (fake ring)', () => {
  const pairs: TcpPair[] = [];
  afterEach(() => {
    for (const p of pairs.splice(0)) p.close();
  });

  it('a ring that fails to open gives the copy backend with the reason, which sends byte-exact', async () => {
    const sender = new Sender({
      ring: () => {
        throw Object.assign(new Error('io_uring_setup: Cannot allocate memory'), { code: 'ENOMEM' });
      },
    });
    expect(sender.backend).toBe('copy');
    expect(sender.fallbackReason).toMatch(/Cannot allocate memory/);
    const pair = await tcpPair();
    pairs.push(pair);
    const data = randomBytes(3 * MiB);
    const got = receive(pair.receiver, data.length);
    expect(await sender.send(pair.sender, data).sent).toBe(data.length);
    expect((await got).sha256).toBe(sha256(data));
    await sender.close();
    expect(() => new Sender({ backend: 'io_uring', ring: () => { throw new Error('nope'); } })).toThrow(
      expect.objectContaining({ code: 'ZCSEND_ERR_URING_UNAVAILABLE' }),
    );
  });

  it('a second ring failing to open mid-run leaves the first serving; the second falls back', async () => {
    let opened = 0;
    const made: FakeRing[] = [];
    const factory = (h: ConstructorParameters<typeof FakeRing>[0]) => {
      if (++opened > 1) throw new Error('io_uring_setup: Too many open files');
      const r = new FakeRing(h);
      made.push(r);
      return r;
    };
    const first = new Sender({ adaptive: false, threshold: 0, ring: factory });
    const second = new Sender({ adaptive: false, threshold: 0, ring: factory });
    expect([first.backend, second.backend]).toEqual(['io_uring', 'copy']);
    expect(second.fallbackReason).toMatch(/Too many open files/);
    const h = first.send(FD, bytes(10 * KiB));
    const sqe = made[0]!.submitted('sendZc')[0]!;
    made[0]!.first(sqe.userData, sqe.length).notif(sqe.userData).flush();
    expect(await h.sent).toBe(10 * KiB);
    await Promise.all([first.close(), second.close()]);
  });

  it('a transient submit failure (-EBUSY) does not strand the send: the SQE reaches the kernel later without another send', async () => {
    const { sender, ring } = setup({}, { submitResult: -EBUSY });
    const h = sender.send(FD, bytes(10 * KiB));
    expect(ring.submitted('sendZc')).toHaveLength(0);
    ring.options.submitResult = undefined; // the kernel has room again
    await waitFor(() => ring.submitted('sendZc').length === 1, 2000, 'the stranded SQE to be submitted again');
    const sqe = ring.submitted('sendZc')[0]!;
    ring.first(sqe.userData, sqe.length).notif(sqe.userData).flush();
    expect(await h.sent).toBe(10 * KiB);
    await sender.close();
    expect(quiet(sender.stats())).toBeNull();
  });

  it('a ring that stops submitting for good (-EBADF) fails its sends with a typed error, and close() still resolves', async () => {
    const { sender, ring } = setup();
    const ok = sender.send(FD, bytes(10 * KiB));
    const okSqe = ring.submitted('sendZc')[0]!;
    ring.first(okSqe.userData, okSqe.length).notif(okSqe.userData).flush();
    await ok.released;
    ring.options.submitResult = -EBADF; // the ring is gone (fd closed under us)
    const h = sender.send(FD + 1, bytes(10 * KiB));
    const settled = await Promise.race([
      h.sent.then(
        () => 'resolved',
        (e: ZcSendError) => e.code,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still pending after 2 s'), 2000)),
    ]);
    expect(settled).toBe('ZCSEND_ERR_SUBMIT_FAILED');
    const closed = await Promise.race([sender.close().then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('close() pending after 2 s'), 2000))]);
    expect(closed).toBe('closed');
    // The unsubmitted SQE must never reach a kernel after its buffer was released: the ring is closed first.
    expect(ring.closed).toBe(true);
    expect(quiet(sender.stats())).toBeNull();
  });

  it('an op whose SQE could not be queued (-EBUSY, SQ full) fails cleanly and leaves nothing behind', async () => {
    const { sender, ring } = setup({}, { failQueueWith: -EBUSY });
    const pair = await tcpPair();
    pairs.push(pair);
    const h = sender.send(pair.sender, bytes(100 * KiB));
    await expect(h.sent).rejects.toMatchObject({ code: 'ZCSEND_ERR_SUBMIT_FAILED', errno: EBUSY });
    expect(pair.sender.destroyed).toBe(true);
    await h.released;
    expect(ring.sqes).toHaveLength(0);
    await sender.close();
    expect(quiet(sender.stats())).toBeNull();
  });
});

// ---- the real kernel -----------------------------------------------------------------------

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const canDropIpcLock = process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status === 0;

/** Runs a module snippet against the built package in a child with extra limits; returns its JSON. */
function child<T>(code: string, opts: { memlockBytes?: number; nofile?: number } = {}): T {
  const env = { ...process.env };
  delete env.ZCSEND_DISABLE;
  delete env.ZCSEND_REQUIRE_URING;
  delete env.NODE_OPTIONS;
  const script = `import * as core from ${JSON.stringify(dist)};\nimport * as net from 'node:net';\nimport { createHash, randomFillSync } from 'node:crypto';\n${CHILD_HELPERS}\n${code}`;
  let argv = [process.execPath, '--input-type=module', '-e', script];
  if (opts.memlockBytes !== undefined || opts.nofile !== undefined) {
    const limits = [opts.memlockBytes !== undefined ? `--memlock=${opts.memlockBytes}` : '', opts.nofile !== undefined ? `--nofile=${opts.nofile}` : ''].filter(Boolean);
    argv = ['prlimit', ...limits, '--', ...argv];
  }
  // Root is exempt from RLIMIT_MEMLOCK through CAP_IPC_LOCK: drop it so the limit bites as it does for users.
  if (opts.memlockBytes !== undefined && process.getuid?.() === 0) argv = ['setpriv', '--bounding-set=-ipc_lock', '--inh-caps=-ipc_lock', ...argv];
  const out = execFileSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as T;
}

const CHILD_HELPERS = `
async function pair() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const receiver = net.connect(server.address().port, '127.0.0.1');
  const [sender] = await new Promise((r) => server.once('connection', (s) => r([s])));
  server.close();
  return { sender, receiver };
}
function receive(socket, n) {
  return new Promise((resolve) => {
    const h = createHash('sha256'); let got = 0;
    socket.on('data', (c) => { h.update(c); got += c.length; if (got >= n) resolve({ got, sha: h.digest('hex') }); });
  });
}
function random(n) { const b = Buffer.allocUnsafeSlow(n); randomFillSync(b); return b; }
const sha = (b) => createHash('sha256').update(b).digest('hex');
`;

describe.runIf(MODE === 'uring' && URING)('faults on the real kernel', () => {
  it.runIf(canDropIpcLock)('RLIMIT_MEMLOCK without CAP_IPC_LOCK: SEND_ZC gets -ENOMEM and the Sender falls back to plain sends, byte-exact', () => {
    const result = child<{ ok: boolean; fallbacks: Record<string, number>; quiet: boolean; zcOps: number; plainOps: number; registered: number; memlockAfterRegister: number }>(
      `const s = new core.Sender({ adaptive: false, chunkSize: 4 << 20 });
       const { sender, receiver } = await pair();
       const data = random(16 << 20);
       const got = receive(receiver, data.length);
       const h = s.send(sender, data);
       await h.sent;
       const r = await got;
       const report = await h.released;
       // Registering a buffer larger than the limit fails the same way, and says so.
       const registered = s.registerBuffer(random(8 << 20));
       const memlockAfterRegister = s.stats().fallbacks.memlock ?? 0;
       sender.destroy(); receiver.destroy();
       await s.close();
       const st = s.stats();
       console.log(JSON.stringify({ ok: r.sha === sha(data), fallbacks: st.fallbacks, quiet: st.inFlightOps === 0 && st.pinnedBytes === 0 && st.pendingNotifications === 0,
         zcOps: report.zcOps, plainOps: report.plainOps, registered, memlockAfterRegister }));`,
      { memlockBytes: 1 << 20 },
    );
    expect(result.ok).toBe(true);
    expect(result.fallbacks.memlock).toBeGreaterThanOrEqual(1);
    expect(result.zcOps).toBeGreaterThanOrEqual(1);
    expect(result.plainOps).toBeGreaterThanOrEqual(4);
    expect(result.quiet).toBe(true);
    expect(result.registered).toBe(-1);
  });

  it('fd exhaustion when a second ring is created mid-run: it falls back with the reason, the first ring keeps serving', () => {
    const result = child<{ first: string; second: string; reason: string; firstOk: boolean; secondOk: boolean; required: string }>(
      `const fs = await import('node:fs');
       const first = new core.Sender({ adaptive: false });
       const { sender, receiver } = await pair();
       const held = [];
       try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch {}
       const second = new core.Sender({ adaptive: false });
       let required = 'constructed';
       try { new core.Sender({ backend: 'io_uring' }); } catch (e) { required = e.code; }
       for (const fd of held) fs.closeSync(fd);
       const a = random(3 << 20), b = random(2 << 20);
       const got = receive(receiver, a.length + b.length);
       await first.send(sender, a).sent;
       await second.send(sender, b).sent;
       const r = await got;
       sender.destroy(); receiver.destroy();
       await first.close(); await second.close();
       console.log(JSON.stringify({ first: first.backend, second: second.backend, reason: second.fallbackReason, firstOk: r.sha === sha(Buffer.concat([a, b])), secondOk: true, required }));`,
      { nofile: 64 },
    );
    expect(result).toMatchObject({ first: 'io_uring', second: 'copy', firstOk: true, required: 'ZCSEND_ERR_URING_UNAVAILABLE' });
    expect(result.reason).toMatch(/EMFILE|Too many open files/);
  });

  it('a tiny completion queue under many concurrent sockets loses nothing (overflow, if any, is counted)', async () => {
    const sender = new Sender({ adaptive: false, entries: 8, chunkSize: 256 * KiB });
    const ps = await Promise.all(Array.from({ length: 48 }, () => tcpPair()));
    try {
      const bodies = ps.map((_, i) => randomBytes(MiB + i * 4099));
      const results = await Promise.all(
        ps.map(async (p, i) => {
          const got = receive(p.receiver, bodies[i]!.length);
          await sender.send(p.sender, bodies[i]!).sent;
          return got;
        }),
      );
      results.forEach((r, i) => expect(r.sha256).toBe(sha256(bodies[i]!)));
      await sender.close();
      const stats = sender.stats();
      expect(quiet(stats)).toBeNull();
      expect(stats.violations).toBe(0);
      expect(stats.notifications).toBe(stats.zcOpsSubmitted);
      console.log(`tiny CQ: ${stats.opsSubmitted} ops over 48 sockets, CQ overflows ${stats.cqOverflows}`);
    } finally {
      for (const p of ps) p.close();
    }
  });

  it('sockets destroyed by the peer mid-send, many at once: every send settles, nothing stays pinned', async () => {
    const sender = new Sender({ adaptive: false, chunkSize: 256 * KiB });
    const ps = await Promise.all(Array.from({ length: 16 }, () => tcpPair()));
    try {
      const handles = ps.map((p, i) => {
        let got = 0;
        p.receiver.on('data', (c: Buffer) => {
          got += c.length;
          if (got > (i + 1) * 64 * KiB) (i % 2 ? p.receiver.resetAndDestroy() : p.receiver.destroy());
        });
        return sender.send(p.sender, randomBytes(8 * MiB));
      });
      const outcomes = await Promise.all(handles.map((h) => h.sent.then(() => 'sent', (e: ZcSendError) => e.code)));
      expect(outcomes.every((o) => /^ZCSEND_ERR_(SEND_FAILED|SOCKET_CLOSED|CANCELLED)$/.test(o))).toBe(true);
      await Promise.all(handles.map((h) => h.released));
      await sender.close();
      expect(quiet(sender.stats())).toBeNull();
      expect(sender.stats().violations).toBe(0);
    } finally {
      for (const p of ps) p.close();
    }
  });
});

describe.runIf(MODE === 'copy')('faults on the copy backend', () => {
  it('peers that go away mid-send: every send settles with a typed error, nothing leaks', async () => {
    const sender = new Sender();
    expect(sender.backend).toBe('copy');
    const ps = await Promise.all(Array.from({ length: 8 }, () => tcpPair()));
    try {
      const handles = ps.map((p) => {
        p.receiver.once('data', () => p.receiver.resetAndDestroy());
        return sender.send(p.sender, randomBytes(16 * MiB));
      });
      const outcomes = await Promise.all(handles.map((h) => h.sent.then(() => 'sent', (e: unknown) => (e instanceof ZcSendError ? e.code : String(e)))));
      expect(outcomes.every((o) => o === 'sent' || /^ZCSEND_ERR_(SEND_FAILED|SOCKET_CLOSED)$/.test(o))).toBe(true);
      await Promise.all(handles.map((h) => h.released));
      await sender.close();
      expect(quiet(sender.stats())).toBeNull();
    } finally {
      for (const p of ps) p.close();
    }
  });
});

