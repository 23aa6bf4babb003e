// File engines on real sockets (loopback), bytes compared end to end by sha256, in both modes.
// With io_uring the Sender runs with adaptive off, so SEND_ZC really runs on loopback.
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileSender, Sender, ZcSendError, type FileRef, type FileSenderOptions, type FileSendResult } from '../src/index.js';
import { MODE, URING, randomBytes, receive, sha256, waitFor } from './helpers.js';
import { dropFromPageCache, fileFixtures, openFds, writeSparseFile } from './file-fixtures.js';

const KiB = 1 << 10;
const MiB = 1 << 20;
const GiB = 1 << 30;

const { dir, pair, own, writeFile, fetchRanges, expectPeerAbortRejects } = fileFixtures('zcsend-files-');

function newSender(): Sender {
  return own(new Sender({ adaptive: false }));
}

function newFileSender(options: FileSenderOptions = {}): FileSender {
  return own(new FileSender({ sender: newSender(), ...options }));
}

function refOf(p: string): FileRef {
  return { path: p, stat: fs.statSync(p) };
}

async function expectQuiet(fileSender: FileSender): Promise<void> {
  await fileSender.close();
  const stats = fileSender.stats();
  expect(stats).toMatchObject({ activeSends: 0, inFlightBytes: 0, waitingSends: 0 });
  expect(stats.pool.free).toBe(stats.pool.buffers);
  const s = fileSender.sender.stats();
  expect(s.inFlightOps).toBe(0);
  expect(s.pinnedBytes).toBe(0);
  expect(s.pendingNotifications).toBe(0);
  expect(s.violations).toBe(0);
}

describe.runIf(MODE === 'copy' || URING)(`FileSender on real sockets (${MODE})`, () => {
  let medium: Buffer;
  let mediumRef: FileRef;
  let small: Buffer;
  let smallRef: FileRef;

  beforeAll(() => {
    medium = randomBytes(3 * MiB + 123);
    mediumRef = writeFile(medium, 'medium');
    small = randomBytes(10 * KiB + 7);
    smallRef = writeFile(small, 'small');
  });

  const ranges = (size: number): Array<[number, number]> => [
    [0, size], // whole file
    [0, 1000], // start
    [MiB - 7, 2 * MiB + 13], // middle, across chunk boundaries
    [size - 5000, size], // end
    [12345, 12346], // one byte
    [100, 100], // empty
  ];

  it('uses the Sender this mode asks for', () => {
    const f = newFileSender();
    expect(f.sender.backend).toBe(MODE === 'uring' ? 'io_uring' : 'copy');
  });

  for (const engine of ['copy', 'zc-cache', 'splice', 'sendfile', 'auto'] as const) {
    it(`engine ${engine}: whole file and ranges are byte-exact`, async () => {
      const f = newFileSender({ engine });
      // Cold for auto, which would send a file in the page cache by sendfile at once.
      if (engine === 'auto') dropFromPageCache(mediumRef);
      const results = await fetchRanges(f, mediumRef, medium, ranges(medium.length));
      const sent = results.filter((r) => r.bytes > 0);
      const smallResults = await fetchRanges(f, smallRef, small, [[0, small.length], [small.length - 1, small.length]]);
      const stats = f.stats();
      if (engine === 'copy') {
        expect(sent.every((r) => r.engine === 'copy' && r.fallbackReason === null)).toBe(true);
        expect(stats.cache.loads).toBe(0);
      } else if (engine === 'splice' || engine === 'sendfile') {
        if (MODE === 'uring') {
          // files-splice*.test.ts and files-sendfile.test.ts test the engines themselves.
          expect([...sent, ...smallResults].every((r) => r.engine === engine && r.fallbackReason === null)).toBe(true);
        } else {
          // No ring: served by copy and counted as a fallback, never faked.
          expect(sent.every((r) => r.engine === 'copy' && r.fallbackReason === `${engine}-unavailable`)).toBe(true);
          expect(stats.fallbacks[`${engine}-unavailable`]).toBe(sent.length + smallResults.length);
        }
      } else if (engine === 'auto' && MODE === 'uring') {
        // auto: the cold 3 MiB file by splice (at least spliceMinBytes) until it was sent whole, then
        // by sendfile (hot in the page cache); the small one from the cache at once.
        expect(sent.map((r) => [r.engine, r.fallbackReason])).toEqual([['splice', null], ...Array(4).fill(['sendfile', null])]);
        expect(smallResults.map((r) => [r.engine, r.cacheHit])).toEqual([['zc-cache', false], ['zc-cache', true]]);
      } else if (engine === 'zc-cache') {
        expect(sent.every((r) => r.engine === 'zc-cache')).toBe(true);
        expect(sent.map((r) => r.cacheHit)).toEqual([false, true, true, true, true]);
        expect(smallResults.map((r) => r.cacheHit)).toEqual([false, true]);
        expect(stats.cache).toMatchObject({ loads: 2, misses: 2, hits: 5, entries: 2, bytes: medium.length + small.length });
      } else {
        // auto without splice: the 3 MiB file is copied on its first request and cached from its second; the small one at once.
        expect(sent.map((r) => r.engine)).toEqual(['copy', 'zc-cache', 'zc-cache', 'zc-cache', 'zc-cache']);
        expect(sent.map((r) => r.cacheHit)).toEqual([false, false, true, true, true]);
        expect(smallResults.map((r) => [r.engine, r.cacheHit])).toEqual([['zc-cache', false], ['zc-cache', true]]);
      }
      expect(stats.byEngine.copy.bytes + stats.byEngine['zc-cache'].bytes + stats.byEngine.splice.bytes + stats.byEngine.sendfile.bytes).toBe(
        [...results, ...smallResults].reduce((n, r) => n + r.bytes, 0),
      );
      if (MODE === 'copy') expect(f.sender.stats().copyWrites).toBeGreaterThan(0);
      else if (engine === 'copy' || engine === 'zc-cache') expect(f.sender.stats().zcOpsSubmitted).toBeGreaterThan(0);
      else expect(stats.byEngine[engine === 'sendfile' ? 'sendfile' : 'splice'].bytes).toBeGreaterThan(0);
      // Cached files are registered with the ring: their SEND_ZC ops use the fixed buffer.
      if (MODE === 'uring' && engine === 'zc-cache') expect(f.sender.stats().fixedOpsSubmitted).toBeGreaterThan(0);
      if (engine === 'copy') expect(f.sender.stats().fixedOpsSubmitted).toBe(0);
      await expectQuiet(f);
      expect(f.stats().cache).toMatchObject({ entries: 0, bytes: 0 });
    });
  }

  for (const engine of ['copy', 'zc-cache', 'splice', 'sendfile', 'auto'] as const) {
    it(`engine ${engine}: a head passed to sendFile goes first, each response byte-exact, also to a reader that starts late`, async () => {
      const f = newFileSender({ engine });
      const { sender: sock, receiver } = await pair();
      const head = (n: number) => Buffer.from(`HTTP/1.1 200 OK\r\nX-Response: ${n}\r\n\r\n`, 'latin1');
      const plan: Array<[number, number]> = [[0, medium.length], [0, medium.length], [5, 70_000], [100, 100], [0, small.length]];
      const expected = plan.map(([s, e], i) => Buffer.concat([head(i), (i === 4 ? small : medium).subarray(s, e)]));
      const total = expected.reduce((n, b) => n + b.length, 0);
      // Paused for the first response: the socket fills part-way through the body (or the head).
      receiver.pause();
      const received = receive(receiver, total);
      setTimeout(() => receiver.resume(), 50);
      const results: FileSendResult[] = [];
      for (const [i, [s, e]] of plan.entries()) results.push(await f.sendFile(sock, i === 4 ? smallRef : mediumRef, s, e, { head: head(i) }));
      expect(results.map((r) => r.bytes)).toEqual(plan.map(([s, e]) => e - s));
      const got = await received;
      expect(got.bytes).toBe(total);
      expect(got.sha256).toBe(sha256(...expected));
      // Only auto and sendfile ever send a head with the body, and only with a ring; a user who
      // chose copy or zc-cache gets no sendfile, not even through sendHeadAndFileNow.
      const allowed = MODE === 'uring' && (engine === 'sendfile' || engine === 'auto');
      expect(f.canSendHeadAndFileNow).toBe(allowed);
      if (!allowed) {
        const fd = fs.openSync(smallRef.path, 'r');
        try {
          expect(f.sendHeadAndFileNow(sock, head(9), fd, 0, 10)).toBeNull();
        } finally {
          fs.closeSync(fd);
        }
      }
      // With a ring, sendfile (forced, or auto once the file is hot) sent heads with the body.
      const immediate = f.stats().sendfile.immediateSends;
      if (MODE === 'uring' && (engine === 'sendfile' || engine === 'auto')) expect(immediate).toBeGreaterThan(0);
      else expect(immediate).toBe(0);
      await expectQuiet(f);
    });
  }

  for (const engine of ['copy', 'zc-cache'] as const) {
    it(`engine ${engine}: bytes written on the socket before sendFile go first`, async () => {
      const f = newFileSender({ engine });
      const { sender: sock, receiver } = await pair();
      const head = Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${medium.length}\r\n\r\n`);
      const received = receive(receiver, head.length + medium.length);
      sock.write(head);
      await f.sendFile(sock, mediumRef, 0, medium.length);
      expect((await received).sha256).toBe(sha256(head, medium));
      await expectQuiet(f);
    });
  }

  it('reads through a caller-provided fd and leaves it open', async () => {
    const data = randomBytes(2 * MiB);
    const p = path.join(dir(), 'by-fd');
    fs.writeFileSync(p, data);
    const fd = fs.openSync(p, 'r');
    try {
      const file: FileRef = { path: p, stat: fs.fstatSync(fd), fd };
      // The path now names another file: the body must still be the version the fd holds.
      fs.renameSync(writeFile(randomBytes(data.length)).path, p);
      for (const engine of ['copy', 'zc-cache'] as const) {
        const f = newFileSender({ engine });
        await fetchRanges(f, file, data, [[0, data.length], [5, 70_000]]);
      }
      expect(fs.fstatSync(fd).size).toBe(data.length);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('serves a file larger than the cache through copy', async () => {
    const forced = newFileSender({ engine: 'zc-cache', cacheBytes: 2 * MiB });
    const [r1] = await fetchRanges(forced, mediumRef, medium, [[0, medium.length]]);
    expect(r1).toMatchObject({ engine: 'copy', fallbackReason: 'too-large-for-cache' });
    const auto = newFileSender({ cacheBytes: 2 * MiB, spliceMinBytes: Number.MAX_SAFE_INTEGER });
    const autoResults = await fetchRanges(auto, mediumRef, medium, [[0, medium.length], [7, medium.length]]);
    expect(autoResults.every((r) => r.engine === 'copy' && r.fallbackReason === null)).toBe(true);
    expect(forced.stats().cache.loads + auto.stats().cache.loads).toBe(0);
  });

  it('reads a file once for concurrent misses', async () => {
    const f = newFileSender({ engine: 'zc-cache' });
    const data = randomBytes(5 * MiB + 1);
    const file = writeFile(data);
    const results = await Promise.all(Array.from({ length: 8 }, () => fetchRanges(f, file, data, [[0, data.length]])));
    expect(results.every(([r]) => r!.engine === 'zc-cache' && !r!.cacheHit)).toBe(true);
    expect(f.stats().cache).toMatchObject({ loads: 1, misses: 8, hits: 0, entries: 1 });
    const [again] = await fetchRanges(f, file, data, [[1, 2]]);
    expect(again!.cacheHit).toBe(true);
    await expectQuiet(f);
  });

  it('invalidates a cached file rewritten with the same size or a different size', async () => {
    const f = newFileSender({ engine: 'zc-cache' });
    const v1 = randomBytes(MiB);
    const file = writeFile(v1, 'changing');
    await fetchRanges(f, file, v1, [[0, v1.length]]);
    expect((await fetchRanges(f, file, v1, [[10, 20]]))[0]!.cacheHit).toBe(true);

    // Same size, new content, a different mtime.
    const v2 = randomBytes(MiB);
    fs.writeFileSync(file.path, v2);
    fs.utimesSync(file.path, new Date(), new Date(Date.now() + 5000));
    const ref2 = refOf(file.path);
    expect(ref2.stat.size).toBe(v1.length);
    const [r2] = await fetchRanges(f, ref2, v2, [[0, v2.length]]);
    expect(r2).toMatchObject({ engine: 'zc-cache', cacheHit: false });
    expect(f.stats().cache).toMatchObject({ invalidations: 1, loads: 2, entries: 1, bytes: v2.length });

    // A different size.
    const v3 = randomBytes(MiB + 4097);
    fs.writeFileSync(file.path, v3);
    const ref3 = refOf(file.path);
    const [r3] = await fetchRanges(f, ref3, v3, [[0, v3.length]]);
    expect(r3).toMatchObject({ engine: 'zc-cache', cacheHit: false });
    expect(f.stats().cache).toMatchObject({ invalidations: 2, loads: 3, entries: 1, bytes: v3.length });

    // A stale stat still matches the entry cached for it: the body agrees with the caller's headers.
    fs.writeFileSync(file.path, randomBytes(v3.length));
    expect((await fetchRanges(f, ref3, v3, [[0, v3.length]]))[0]).toMatchObject({ engine: 'zc-cache', cacheHit: true });
    await expectQuiet(f);
  });

  it('caches nothing, and sends nothing, when the file on disk is not the version the caller stat-ed', async () => {
    const f = newFileSender({ engine: 'zc-cache' });
    const file = writeFile(randomBytes(MiB));
    const now = randomBytes(MiB);
    fs.writeFileSync(file.path, now);
    fs.utimesSync(file.path, new Date(), new Date(Date.now() + 10_000));
    // The load sees another mtime, so it caches nothing; the copy it falls back to finds the same
    // and refuses too: those bytes do not belong under the caller's stat (its length, its ETag).
    const { sender: sock, receiver } = await pair();
    let received = 0;
    receiver.on('data', (chunk: Buffer) => (received += chunk.length));
    await expect(f.sendFile(sock, file, 0, now.length)).rejects.toMatchObject({ code: 'ZCSEND_ERR_FILE_CHANGED' });
    expect(f.stats().cache).toMatchObject({ loads: 1, entries: 0, bytes: 0 });
    expect(f.stats()).toMatchObject({ errors: 1, errorCodes: { ZCSEND_ERR_FILE_CHANGED: 1 } });
    await new Promise((r) => setTimeout(r, 50));
    expect(received).toBe(0);
    sock.destroy();
    await expectQuiet(f);
  });

  it('never evicts an entry a send still references (receiver paused)', async () => {
    const f = newFileSender({ engine: 'zc-cache', cacheBytes: 48 * MiB });
    const a = randomBytes(32 * MiB);
    const b = randomBytes(32 * MiB);
    const fileA = writeFile(a);
    const fileB = writeFile(b);

    const held = await pair();
    held.receiver.pause();
    const sendingA = f.sendFile(held.sender, fileA, 0, a.length);
    await waitFor(() => f.stats().cache.busyBytes === a.length && f.stats().cache.loads === 1, 10_000, 'A to be cached and referenced');
    await new Promise((r) => setTimeout(r, 100));
    // The paused peer cannot take 32 MiB: the send that references A is not released.
    expect(f.stats().cache.busyBytes).toBe(a.length);

    const [rb] = await fetchRanges(f, fileB, b, [[0, b.length]]);
    expect(rb).toMatchObject({ engine: 'copy', fallbackReason: 'cache-full' });
    expect(f.stats().cache).toMatchObject({ evictions: 0, entries: 1, bytes: a.length });

    const receivedA = receive(held.receiver, a.length);
    held.receiver.resume();
    expect((await sendingA).bytes).toBe(a.length);
    expect((await receivedA).sha256).toBe(sha256(a));
    await waitFor(() => f.stats().cache.busyBytes === 0, 10_000, 'A to be released');

    const [rb2] = await fetchRanges(f, fileB, b, [[0, b.length]]);
    expect(rb2).toMatchObject({ engine: 'zc-cache', cacheHit: false });
    expect(f.stats().cache).toMatchObject({ evictions: 1, entries: 1, bytes: b.length });
    await expectQuiet(f);
  });

  for (const engine of ['copy', 'zc-cache'] as const) {
    it(`engine ${engine}: the peer aborting mid-file rejects cleanly and leaks nothing`, async () => {
      const f = newFileSender({ engine });
      const data = randomBytes(48 * MiB);
      const file = writeFile(data);
      const fdsBefore = openFds();
      await expectPeerAbortRejects(f, file);
      await waitFor(() => f.stats().inFlightBytes === 0 && f.stats().cache.busyBytes === 0, 10_000, 'buffers to be released');
      await waitFor(() => f.sender.stats().pinnedBytes === 0 && f.sender.stats().inFlightOps === 0, 10_000, 'the Sender to be idle');
      await waitFor(() => openFds() <= fdsBefore, 10_000, 'fds to be closed');
      await expectQuiet(f);
    });
  }

  it('keeps 32 concurrent responses within maxInFlightBytes', async () => {
    const limit = 4 * MiB;
    const chunk = 256 * KiB;
    const f = newFileSender({ engine: 'copy', maxInFlightBytes: limit, chunkSize: chunk });
    let maxInFlight = 0;
    let sawWaiting = false;
    const sample = setInterval(() => {
      const s = f.stats();
      maxInFlight = Math.max(maxInFlight, s.inFlightBytes);
      sawWaiting ||= s.waitingSends > 0;
    }, 1);
    try {
      await Promise.all(Array.from({ length: 32 }, () => fetchRanges(f, mediumRef, medium, [[0, medium.length]])));
    } finally {
      clearInterval(sample);
    }
    expect(maxInFlight).toBeGreaterThan(0);
    expect(maxInFlight).toBeLessThanOrEqual(limit);
    expect(sawWaiting).toBe(true);
    // Memory stays bounded: never more pooled buffers than the budget holds.
    expect(f.stats().pool.buffers).toBeLessThanOrEqual(limit / chunk);
    expect(f.stats().byEngine.copy).toEqual({ sends: 32, bytes: 32 * medium.length });
    await expectQuiet(f);
  });

  it('serves ranges of a sparse file larger than 4 GiB', async () => {
    const size = 4 * GiB + 4096;
    const sparse = writeSparseFile(path.join(dir(), 'sparse'), size, [
      [4 * GiB - 50, randomBytes(100)], // across the 4 GiB boundary
      [4 * GiB + 100, randomBytes(64)],
      [size - 10, randomBytes(10)],
    ]);
    try {
      expect(sparse.file.stat.size).toBe(size);
      const wanted: Array<[number, number]> = [
        [4 * GiB - 1000, 4 * GiB + 1000],
        [4 * GiB - 3 * MiB, 4 * GiB + 200], // several chunks, ending past the boundary
        [size - 10, size],
      ];
      for (const engine of ['copy', 'auto', 'zc-cache'] as const) {
        // auto without splice here (files-splice.test.ts covers splice past 4 GiB).
        const f = newFileSender({ engine, spliceMinBytes: Number.MAX_SAFE_INTEGER });
        const results = await fetchRanges(f, sparse.file, sparse.expected, wanted);
        for (const r of results) {
          expect(r.engine).toBe('copy');
          if (engine === 'zc-cache') expect(r.fallbackReason).toBe('too-large-for-cache');
        }
        await expectQuiet(f);
      }
    } finally {
      sparse.remove();
    }
  });

  it('close() waits for in-flight sends and their release, then empties the cache', async () => {
    const f = newFileSender({ engine: 'zc-cache' });
    const data = randomBytes(32 * MiB);
    const file = writeFile(data);
    const { sender: sock, receiver } = await pair();
    receiver.pause();
    const sending = f.sendFile(sock, file, 0, data.length);
    await waitFor(() => f.stats().cache.busyBytes > 0, 10_000, 'the send to start');
    let closed = false;
    const closing = f.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    await expect(f.sendFile(sock, file, 0, 1)).rejects.toMatchObject({ code: 'ZCSEND_ERR_SENDER_CLOSED' });
    const received = receive(receiver, data.length);
    receiver.resume();
    expect((await sending).bytes).toBe(data.length);
    expect((await received).sha256).toBe(sha256(data));
    await closing;
    expect(f.stats().cache).toMatchObject({ entries: 0, bytes: 0, busyBytes: 0 });
  });

  it('a path renamed over after its stat: nothing on the socket, not even the head, under any engine; by fd the old version whole', async () => {
    for (const engine of ['copy', 'zc-cache', 'splice', 'sendfile'] as const) {
      const f = newFileSender({ engine });
      const old = randomBytes(300 * KiB);
      const ref = writeFile(old, `renamed-over-${engine}`);
      const heldFd = fs.openSync(ref.path, 'r');
      // An atomic deploy: the same size, other bytes, a new inode renamed over the path.
      fs.writeFileSync(`${ref.path}.next`, randomBytes(old.length));
      fs.renameSync(`${ref.path}.next`, ref.path);
      const { sender: sock, receiver } = await pair();
      const got: Buffer[] = [];
      receiver.on('data', (chunk: Buffer) => got.push(chunk));
      const head = Buffer.from('HTTP/1.1 200 OK\r\n\r\n');
      // Whatever the engine opens once and keeps (its ring, a pooled pipe) is open before counting.
      const warm = randomBytes(1000);
      await f.sendFile(sock, writeFile(warm), 0, warm.length);
      await waitFor(() => Buffer.concat(got).length === warm.length, 10_000, 'the warm-up bytes');
      got.length = 0;
      const fdsBefore = openFds();
      const err = await f.sendFile(sock, ref, 0, old.length, { head }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ZCSEND_ERR_FILE_CHANGED', syscall: 'fstat' });
      expect(openFds()).toBeLessThanOrEqual(fdsBefore);
      // Every engine checks the file before the head goes out: the caller may still answer.
      await new Promise((r) => setTimeout(r, 50));
      expect(Buffer.concat(got)).toEqual(Buffer.alloc(0));
      const result = await f.sendFile(sock, { ...ref, fd: heldFd }, 0, old.length, { head });
      expect(result.bytes).toBe(old.length);
      await waitFor(() => Buffer.concat(got).length >= head.length + old.length, 10_000, 'the old version to arrive');
      expect(Buffer.concat(got).subarray(0, head.length)).toEqual(head);
      expect(sha256(Buffer.concat(got).subarray(head.length))).toBe(sha256(old));
      fs.closeSync(heldFd);
      sock.destroy();
      await expectQuiet(f);
    }
  });

  it('openVersion: an fd of the stat-ed version, at once for a version just sent whole; a changed or missing file rejects typed', async () => {
    const f = newFileSender({ engine: 'copy' });
    const data = randomBytes(300 * KiB);
    const ref = writeFile(data, 'open-version');
    const readAll = (fd: number) => {
      const buf = Buffer.alloc(data.length + 1);
      return buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0));
    };
    // Not sent yet: opened on the threadpool.
    const coldFd = await f.openVersion(ref);
    expect(sha256(readAll(coldFd))).toBe(sha256(data));
    fs.closeSync(coldFd);
    // Sent whole (at least spliceMinBytes): hot, so the open and fstat are done in the call itself.
    await fetchRanges(f, ref, data, [[0, data.length]]);
    const before = openFds();
    const hot = f.openVersion(ref);
    expect(openFds()).toBe(before + 1);
    const hotFd = await hot;
    expect(sha256(readAll(hotFd))).toBe(sha256(data));
    // A deploy renames a new file over the path: the held fd still reads the stat-ed version.
    fs.writeFileSync(`${ref.path}.next`, randomBytes(data.length));
    fs.renameSync(`${ref.path}.next`, ref.path);
    expect(sha256(readAll(hotFd))).toBe(sha256(data));
    fs.closeSync(hotFd);
    for (const stale of [ref, { ...ref, stat: { ...ref.stat, ino: ref.stat.ino + 1 } as fs.Stats }]) {
      await expect(f.openVersion(stale)).rejects.toMatchObject({ code: 'ZCSEND_ERR_FILE_CHANGED', syscall: 'fstat' });
    }
    await expect(f.openVersion({ path: path.join(dir(), 'missing'), stat: ref.stat })).rejects.toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', syscall: 'open' });
    expect(openFds()).toBe(before);
  });

  it('rejects bad input and unreadable files with typed errors, leaking no fd', async () => {
    const f = newFileSender({ engine: 'copy' });
    const engines = [f, newFileSender({ engine: 'zc-cache' })];
    const { sender: sock } = await pair();
    // Measured after the rings are open: each Sender holds fds of its own.
    const fdsBefore = openFds();
    const code = (p: Promise<unknown>) => p.then(() => 'resolved', (e: ZcSendError) => e.code);
    expect(await code(f.sendFile(sock, smallRef, 10, 5))).toBe('ZCSEND_ERR_INVALID_ARG');
    expect(await code(f.sendFile(sock, smallRef, 0, small.length + 1))).toBe('ZCSEND_ERR_INVALID_ARG');
    expect(await code(f.sendFile(sock, smallRef, -1, 5))).toBe('ZCSEND_ERR_INVALID_ARG');
    expect(await code(f.sendFile(sock, smallRef, 0.5, 5))).toBe('ZCSEND_ERR_INVALID_ARG');
    expect(await code(f.sendFile({} as never, smallRef, 0, 5))).toBe('ZCSEND_ERR_INVALID_ARG');
    expect(await code(f.sendFile(sock, { path: 'x' } as never, 0, 0))).toBe('ZCSEND_ERR_INVALID_ARG');
    expect(await code(f.sendFile(sock, smallRef, 0, 5, { head: 'HTTP/1.1 200 OK' as never }))).toBe('ZCSEND_ERR_INVALID_ARG');
    expect(await code(f.sendFile(sock, smallRef, 0, 5, null as never))).toBe('ZCSEND_ERR_INVALID_ARG');

    for (const g of engines) {
      const missing: FileRef = { path: path.join(dir(), 'missing'), stat: smallRef.stat };
      const err = await g.sendFile(sock, missing, 0, 100).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', syscall: 'open', errno: os.constants.errno.ENOENT });
      // A file shorter than the stat the caller holds: by path that is another version (nothing
      // of it is sent); by the caller's fd the body cannot be completed.
      const shrunk = writeFile(randomBytes(100 * KiB));
      const stale: FileRef = { path: shrunk.path, stat: { ...shrunk.stat, size: 200 * KiB } as fs.Stats };
      const err2 = await g.sendFile(sock, stale, 0, 200 * KiB).catch((e: unknown) => e);
      expect(err2).toMatchObject({ code: 'ZCSEND_ERR_FILE_CHANGED', syscall: 'fstat' });
      const fd = fs.openSync(shrunk.path, 'r');
      try {
        const err3 = await g.sendFile(sock, { ...stale, fd }, 0, 200 * KiB).catch((e: unknown) => e);
        expect(err3).toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', syscall: 'read' });
      } finally {
        fs.closeSync(fd);
      }
    }
    sock.destroy();
    expect(await code(f.sendFile(sock, smallRef, 0, 5))).toBe('ZCSEND_ERR_SOCKET_CLOSED');
    await waitFor(() => openFds() <= fdsBefore, 5000, 'fds to be closed');
  });

  it('rejects invalid options at construction', () => {
    const bad: FileSenderOptions[] = [
      { engine: 'fast' as never },
      { cacheBytes: -1 },
      { cacheMaxFileBytes: 2 * GiB },
      { maxInFlightBytes: 1000 },
      { chunkSize: 1000 },
      { chunkSize: 8 * MiB, maxInFlightBytes: 8 * MiB },
      { sender: {} as never },
      { nope: 1 } as never,
    ];
    for (const options of bad) expect(() => new FileSender(options)).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_OPTION' }));
    const small = new FileSender({ sender: newSender(), maxInFlightBytes: 512 * KiB });
    expect(small.stats().chunkSize).toBe(256 * KiB);
  });
});
