// The sendfile engine on real sockets (loopback), bytes compared end to end by sha256. With
// io_uring it runs synchronous sendfile(2) with ring POLLOUT waits on a registered slot; under
// ZCSEND_DISABLE=1 it must say why it cannot and still serve every byte through copy.
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { once } from 'node:events';
import { FileSender, Sender, type FileRef, type FileSenderOptions, type FileSendResult } from '../src/index.js';
import { MODE, URING, randomBytes, receive, sha256, waitFor } from './helpers.js';
import { connectionsUntilFd, dropFromPageCache, expectOwnBytesOnly, pageCacheReport, expectPrefixThenEnd, fdOf, fileFixtures, listener, openFds, sparseAcross4GiB } from './file-fixtures.js';

const KiB = 1 << 10;
const MiB = 1 << 20;

const { dir, pair, own, writeFile, fetchRanges, fetchMixedRanges, fetchThroughCallerFd, expectPeerAbortRejects, expectBadFilesRejected } = fileFixtures('zcsend-sendfile-');

function newFileSender(options: FileSenderOptions = {}): FileSender {
  const sender = own(new Sender());
  return own(new FileSender({ sender, engine: 'sendfile', ...options }));
}

/** What a sendfile-engine response must report in this mode. */
function expectSendfile(r: FileSendResult): void {
  if (MODE === 'uring') expect(r).toMatchObject({ engine: 'sendfile', fallbackReason: null, cacheHit: false });
  else expect(r).toMatchObject({ engine: 'copy', fallbackReason: 'sendfile-unavailable', cacheHit: false });
}

/** Nothing of the engine is left: no response in flight, no slot filled, no ring op. */
async function expectQuiet(f: FileSender): Promise<void> {
  expect(f.stats().sendfile.activeSends).toBe(0);
  expect(f.stats().splice.slotsInUse).toBe(0);
  expect(f.stats().inFlightBytes).toBe(0);
  expect(f.sender.stats()).toMatchObject({ inFlightOps: 0, violations: 0 });
  await f.close();
}

/** A receiver that reads at most `bytes` per `everyMs`, so the sender keeps finding the socket full. */
function readAtRate(receiver: net.Socket, bytes: number, everyMs: number): () => void {
  let budget = bytes;
  const onData = (chunk: Buffer): void => {
    budget -= chunk.length;
    if (budget <= 0) receiver.pause();
  };
  receiver.on('data', onData);
  const timer = setInterval(() => {
    budget = bytes;
    receiver.resume();
  }, everyMs);
  return () => {
    clearInterval(timer);
    receiver.off('data', onData);
    receiver.resume();
  };
}

/** A receiver that reads in short bursts, so the sender keeps finding the socket full. */
function readInBursts(receiver: net.Socket, everyMs: number, forMs: number): () => void {
  receiver.pause();
  const timer = setInterval(() => {
    receiver.resume();
    setTimeout(() => receiver.pause(), forMs);
  }, everyMs);
  return () => {
    clearInterval(timer);
    receiver.resume();
  };
}

describe.runIf(MODE === 'copy' || URING)(`sendfile engine on real sockets (${MODE})`, () => {
  let medium: Buffer;
  let mediumRef: FileRef;

  beforeAll(() => {
    medium = randomBytes(5 * MiB + 4321);
    mediumRef = writeFile(medium);
  });

  it('sends the whole file and ranges byte-exact, after bytes written on the socket first', async () => {
    const f = newFileSender();
    const { sent, bytes } = await fetchMixedRanges(f, mediumRef, medium);
    sent.forEach(expectSendfile);
    const stats = f.stats();
    if (MODE === 'uring') {
      expect(stats.byEngine.sendfile).toEqual({ sends: 6, bytes });
      expect(stats.sendfile.calls).toBeGreaterThanOrEqual(6);
      // 5 MiB in 2 MiB turns: the whole-file send gave the event loop back at least twice.
      expect(stats.sendfile.yields).toBeGreaterThanOrEqual(2);
      expect(f.sender.stats().opsSubmitted).toBe(0); // no send ops: every byte went by sendfile
    } else {
      expect(stats.fallbacks['sendfile-unavailable']).toBe(6);
      expect(stats.sendfile.calls).toBe(0);
    }
    await expectQuiet(f);
  });

  it('sendHeadAndFileNow: head and body in one step, byte-exact; a full socket leaves the rest to the caller', async () => {
    const f = newFileSender();
    const fd = fs.openSync(mediumRef.path, 'r');
    try {
      const head = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n', 'latin1');
      const small = await pair();
      const got = receive(small.receiver, head.length + 64 * KiB);
      const sent = f.sendHeadAndFileNow(small.sender, head, fd, 1000, 1000 + 64 * KiB);
      if (MODE === 'copy') {
        // No ring to wait with: the sendfile engine never runs, and nothing was written.
        expect(sent).toBeNull();
        small.sender.write(Buffer.concat([head, medium.subarray(1000, 1000 + 64 * KiB)]));
      } else {
        expect(sent).toEqual({ head: head.length, body: 64 * KiB });
      }
      expect((await got).sha256).toBe(sha256(Buffer.concat([head, medium.subarray(1000, 1000 + 64 * KiB)])));

      // A peer that does not read: the socket takes part of 5 MiB, the caller writes the rest.
      const full = await pair();
      full.receiver.pause();
      const whole = Buffer.concat([head, medium]);
      const again = f.sendHeadAndFileNow(full.sender, head, fd, 0, medium.length);
      let written = 0;
      if (MODE === 'uring') {
        expect(again!.head).toBe(head.length);
        expect(again!.body).toBeGreaterThan(0);
        expect(again!.body).toBeLessThan(medium.length);
        written = head.length + again!.body;
      } else {
        expect(again).toBeNull();
      }
      const rest = receive(full.receiver, whole.length);
      full.sender.write(whole.subarray(written));
      full.receiver.resume();
      expect((await rest).sha256).toBe(sha256(whole));
      expect(f.stats().sendfile).toMatchObject(MODE === 'uring' ? { immediateSends: 2, immediateBytes: 64 * KiB + again!.body } : { immediateSends: 0, immediateBytes: 0 });
    } finally {
      fs.closeSync(fd);
    }
    await expectQuiet(f);
  });

  it('sendHeadAndFileNow refuses bad arguments with ZCSEND_ERR_INVALID_ARG before writing anything (no corked head)', async () => {
    const f = newFileSender();
    const fd = fs.openSync(mediumRef.path, 'r');
    try {
      const head = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', 'latin1');
      const { sender: sock, receiver } = await pair();
      const bad: Array<() => unknown> = [
        () => f.sendHeadAndFileNow(sock, head, -1, 0, 10),
        () => f.sendHeadAndFileNow(sock, head, 1.5, 0, 10),
        () => f.sendHeadAndFileNow(sock, head, fd, 10, 5),
        // An empty body: the head would wait in the socket (MSG_MORE) for bytes that never come.
        () => f.sendHeadAndFileNow(sock, head, fd, 10, 10),
        () => f.sendHeadAndFileNow(sock, head, fd, 0.5, 10),
        () => f.sendHeadAndFileNow(sock, head, fd, -1, 10),
        () => f.sendHeadAndFileNow(sock, 'HTTP/1.1 200 OK\r\n\r\n' as never, fd, 0, 10),
        () => f.sendHeadAndFileNow({} as never, head, fd, 0, 10),
      ];
      for (const call of bad) {
        let code: unknown = 'returned';
        try {
          call();
        } catch (err) {
          code = (err as { code?: unknown }).code;
        }
        expect(code).toBe('ZCSEND_ERR_INVALID_ARG');
      }
      // Nothing of any head reached the socket: the first bytes the peer reads are these.
      const got = receive(receiver, 5);
      sock.write('after');
      const expected = await got;
      expect(expected.sha256).toBe(sha256(Buffer.from('after')));
      sock.destroy();
    } finally {
      fs.closeSync(fd);
    }
    await expectQuiet(f);
  });

  it('reads through a caller-provided fd and leaves it open', async () => {
    const f = newFileSender();
    (await fetchThroughCallerFd(f)).forEach(expectSendfile);
    await expectQuiet(f);
  });

  it('serves 16 concurrent responses to slow readers byte-exact, waiting on the ring when sockets are full', async () => {
    const f = newFileSender();
    const results = await Promise.all(
      Array.from({ length: 16 }, async () => {
        const { sender: sock, receiver } = await pair();
        const received = receive(receiver, medium.length);
        const stop = readInBursts(receiver, 20, 5);
        try {
          const r = await f.sendFile(sock, mediumRef, 0, medium.length);
          expect((await received).sha256).toBe(sha256(medium));
          return r;
        } finally {
          stop();
        }
      }),
    );
    results.forEach(expectSendfile);
    if (MODE === 'uring') {
      const s = f.stats().sendfile;
      expect(s.socketWaits).toBeGreaterThanOrEqual(16);
      expect(s.calls).toBeGreaterThan(s.socketWaits);
    }
    await expectQuiet(f);
  });

  it('refreshes the socket idle timer on progress: a slow but steady reader does not time out', async () => {
    const f = newFileSender();
    const data = randomBytes(16 * MiB);
    const file = writeFile(data);
    const { sender: sock, receiver } = await pair();
    let timedOut = false;
    // The kernel reports the socket writable again only once about half of what it queued has
    // drained (tcp_poll's write-space rule): at 1 MiB per 120 ms that can take two or three reads,
    // so the timeout leaves room for a few of those gaps.
    sock.setTimeout(750, () => (timedOut = true));
    const received = receive(receiver, data.length);
    // About 2 s in all, never 750 ms without progress.
    const stop = readAtRate(receiver, MiB, 120);
    const started = Date.now();
    try {
      expectSendfile(await f.sendFile(sock, file, 0, data.length));
    } finally {
      stop();
    }
    expect((await received).sha256).toBe(sha256(data));
    // Longer than the idle timeout, or the test proves nothing.
    expect(Date.now() - started).toBeGreaterThan(750);
    expect(timedOut).toBe(false);
    if (MODE === 'uring') expect(f.stats().sendfile.socketWaits).toBeGreaterThan(0);
    await expectQuiet(f);
  });

  it('serves ranges of a sparse file larger than 4 GiB, across the 4 GiB boundary', async () => {
    const sparse = sparseAcross4GiB(dir());
    try {
      expect(sparse.file.stat.size).toBe(sparse.size);
      const f = newFileSender();
      const results = await fetchRanges(f, sparse.file, sparse.expected, sparse.wanted);
      results.forEach(expectSendfile);
      await expectQuiet(f);
    } finally {
      sparse.remove();
    }
  });

  it('the peer aborting mid-file rejects with a typed error and leaks nothing', async () => {
    const data = randomBytes(48 * MiB);
    const file = writeFile(data);
    const f = newFileSender();
    const fdsBefore = openFds();
    await expectPeerAbortRejects(f, file);
    await waitFor(() => f.sender.stats().inFlightOps === 0, 10_000, 'the ring ops to complete');
    await expectQuiet(f);
    await waitFor(() => openFds() <= fdsBefore, 10_000, 'fds to be closed');
  });

  it('rejects unreadable and truncated files with typed errors, leaking no fd', async () => {
    const f = newFileSender();
    await expectBadFilesRejected(f);
    await expectQuiet(f);
  });

  it('a file sendfile refuses goes by copy, with the reason', async () => {
    const f = newFileSender();
    // procfs files without splice_read: sendfile says EINVAL before sending a byte. This one's
    // bytes are fixed for the life of the process. Its stat says size 0, so the caller passes
    // the fd with the length it read (a path would be checked against the stat and refused).
    const p = '/proc/self/cmdline';
    const bytes = fs.readFileSync(p);
    const fd = fs.openSync(p, 'r');
    const proc: FileRef = { path: p, stat: { size: bytes.length, mtimeMs: 0, ino: 0, dev: 0 }, fd };
    const [r] = await fetchRanges(f, proc, bytes, [[0, bytes.length]]).finally(() => fs.closeSync(fd));
    expect(r).toMatchObject({ engine: 'copy', fallbackReason: MODE === 'uring' ? 'sendfile-refused' : 'sendfile-unavailable' });
    await expectQuiet(f);
  });
});

describe.runIf(MODE === 'copy' || URING)(`auto: sendfile for files just sent whole (${MODE})`, () => {
  it('splice for a cold file, sendfile once the version was sent whole or its range is cached, splice again for a cold new version', async () => {
    const f = own(new FileSender({ sender: own(new Sender()), engine: 'auto' }));
    const big = randomBytes(300 * KiB);
    const bigRef = writeFile(big, 'auto-big');
    const small = randomBytes(64 * KiB);
    const smallRef = writeFile(small, 'auto-small');
    const other = randomBytes(400 * KiB);
    const otherRef = writeFile(other, 'auto-other');
    // Just written, so cached: sendfile where the kernel says so (cachestat, Linux 6.5), else splice.
    const cached = pageCacheReport(otherRef) === true;
    const [major = 0, minor = 0] = os.release().split('.').map(Number);
    // Root may always ask (CI runs as root): there the sendfile branch is the one tested.
    if ((major > 6 || (major === 6 && minor >= 5)) && process.getuid?.() === 0) expect(cached).toBe(true);
    dropFromPageCache(bigRef);
    const results = [
      ...(await fetchRanges(f, bigRef, big, [[0, big.length]])), // cold: splice reads it in a worker
      ...(await fetchRanges(f, bigRef, big, [[0, big.length], [7, 70_000]])), // hot
      ...(await fetchRanges(f, otherRef, other, [[5, 100_000]])), // never sent whole, but cached (just written)
      ...(await fetchRanges(f, smallRef, small, [[0, small.length], [0, small.length]])),
    ];
    const engines = results.map((r) => r.engine);
    if (MODE === 'uring') {
      expect(engines).toEqual(['splice', 'sendfile', 'sendfile', cached ? 'sendfile' : 'splice', 'zc-cache', 'zc-cache']);
      // The big one is hot; the other was sent by a range only; files below spliceMinBytes are not tracked.
      expect(f.stats().sendfile).toMatchObject({ hotFiles: 1, residentSends: cached ? 1 : 0 });
    } else {
      // No ring: neither splice nor sendfile can run; auto keeps its cache rules and reports no fallback.
      expect(engines.every((e) => e === 'zc-cache' || e === 'copy')).toBe(true);
      expect(results.every((r) => r.fallbackReason === null)).toBe(true);
      expect(f.stats().byEngine.sendfile.sends).toBe(0);
    }
    // A range of a file dropped from the page cache is cold again.
    dropFromPageCache(otherRef);
    const [coldRange] = await fetchRanges(f, otherRef, other, [[200_000, 300_000]]);
    if (MODE === 'uring') expect(coldRange!.engine).toBe('splice');
    else expect(['zc-cache', 'copy']).toContain(coldRange!.engine);
    // A new version of the file (same path) is not hot: splice when cold, sendfile once cached.
    const changed = randomBytes(big.length);
    fs.writeFileSync(bigRef.path, changed);
    fs.utimesSync(bigRef.path, new Date(), new Date(Date.now() + 5000));
    const changedRef: FileRef = { path: bigRef.path, stat: fs.statSync(bigRef.path) };
    dropFromPageCache(changedRef);
    const [again] = await fetchRanges(f, changedRef, changed, [[0, changed.length]]);
    expect(again!.engine).toBe(MODE === 'uring' ? 'splice' : 'zc-cache');
    // Below spliceMinBytes the line holds for sendfile too.
    const g = own(new FileSender({ sender: f.sender, engine: 'auto', spliceMinBytes: 32 * KiB }));
    dropFromPageCache(smallRef);
    const engines2 = (await fetchRanges(g, smallRef, small, [[0, small.length], [0, small.length]])).map((r) => r.engine);
    expect(engines2).toEqual(MODE === 'uring' ? ['splice', 'sendfile'] : ['zc-cache', 'zc-cache']);
    expect(f.stats().sendfile.residentSends).toBe(MODE === 'uring' && cached ? 1 : 0);
  });
});

/**
 * The wrong-client case (DESIGN.md "Sockets owned by libuv"): a socket is closed while the
 * engine waits for it to take more bytes and a new connection gets the same fd number. sendfile
 * only ever names the fd libuv holds at the moment of the call; the wait names the slot.
 */
describe.runIf(URING)('sendfile engine: sockets closed while waiting, and fd numbers reused', () => {

  /** Starts a large send to a paused reader and resolves once it waits on the ring for the full socket. */
  async function waitingSend(f: FileSender, size: number) {
    const data = randomBytes(size);
    const file = writeFile(data);
    const { sender: sock, receiver } = await pair();
    receiver.pause();
    const sending = f.sendFile(sock, file, 0, data.length).then(
      (r) => r,
      (e: unknown) => e,
    );
    await waitFor(() => f.stats().sendfile.socketWaits > 0 && f.sender.stats().inFlightOps === 1, 10_000, 'a wait on a full socket');
    expect(f.stats().splice.slotsInUse).toBe(1);
    return { data, sock, receiver, sending };
  }

  it('a socket destroyed while waiting: the wait is cancelled, the slot emptied, the new holder of its fd number gets nothing', async () => {
    const f = newFileSender();
    const fdsBefore = openFds();
    const { data, sock, receiver, sending } = await waitingSend(f, 32 * MiB);
    const oldFd = fdOf(sock);
    const server = await listener();
    sock.destroy();
    const stray = { bytes: 0 };
    const { reused, sockets } = await connectionsUntilFd(server, oldFd, stray);
    expect(reused).toBe(true);
    try {
      expect(await sending).toMatchObject({ code: 'ZCSEND_ERR_SOCKET_CLOSED' });
      expect(f.sender.stats().inFlightOps).toBe(0);
      expect(f.stats().splice.slotsInUse).toBe(0);
      // The old peer gets a prefix of the body, then the end: nothing keeps the connection alive.
      await expectPrefixThenEnd(receiver, data);
      await expectOwnBytesOnly(sockets, stray);
    } finally {
      for (const s of sockets) s.destroy();
    }
    await expectQuiet(f);
    await waitFor(() => openFds() <= fdsBefore, 10_000, 'fds to be closed');
  });

  it('a socket timing out while waiting (the timeout handler destroys it) ends the wait', async () => {
    const f = newFileSender();
    const { sock, sending } = await waitingSend(f, 32 * MiB);
    sock.setTimeout(100, () => sock.destroy());
    expect(await sending).toMatchObject({ code: 'ZCSEND_ERR_SOCKET_CLOSED' });
    expect(f.stats().splice.slotsInUse).toBe(0);
    await expectQuiet(f);
  });

  it('libuv closes the fd while the engine waits and the number is reused: no byte reaches the new holder', async () => {
    const f = newFileSender();
    const { data, sock, receiver, sending } = await waitingSend(f, 24 * MiB);
    const oldFd = fdOf(sock);
    const server = await listener();
    // The worst case for a raw fd: libuv closes it and Node emits no 'close', so nothing cancels
    // the wait. It ends when the old peer reads; the engine then finds no fd and stops.
    (sock as unknown as { _handle: { close(): void } })._handle.close();
    const stray = { bytes: 0 };
    const { reused, sockets } = await connectionsUntilFd(server, oldFd, stray);
    expect(reused).toBe(true);
    try {
      const prefix: Buffer[] = [];
      receiver.on('data', (d: Buffer) => prefix.push(d));
      const ended = once(receiver, 'end');
      receiver.resume();
      expect(await sending).toMatchObject({ code: 'ZCSEND_ERR_SOCKET_CLOSED' });
      // The slot was the last reference: emptying it closed the original connection.
      await ended;
      const got = Buffer.concat(prefix);
      expect(sha256(got)).toBe(sha256(data.subarray(0, got.length)));
      await new Promise((r) => setTimeout(r, 50));
      expect(stray.bytes).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
    }
    await expectQuiet(f);
  });

  it('destroying the Sender cancels a wait; closing the FileSender waits for a send in progress', async () => {
    const f = newFileSender();
    const { sock, sending } = await waitingSend(f, 32 * MiB);
    await f.sender.destroy();
    expect(await sending).toMatchObject({ code: 'ZCSEND_ERR_CANCELLED' });
    expect(f.stats().splice.slotsInUse).toBe(0);
    sock.destroy();

    const g = newFileSender();
    const second = await waitingSend(g, 16 * MiB);
    let closed = false;
    const closing = g.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    const received = receive(second.receiver, second.data.length);
    second.receiver.resume();
    expectSendfile((await second.sending) as FileSendResult);
    expect((await received).sha256).toBe(sha256(second.data));
    await closing;
    expect(g.stats().splice.slotsInUse).toBe(0);
  });
});
