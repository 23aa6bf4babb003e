// Shared by the file-engine suites: a temp dir of test files, connections and senders closed
// after each test, a range fetch checked end to end by sha256, sparse files past 4 GiB, files
// dropped from the page cache, and the fd-number reuse probes of the wrong-client tests.
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { ZcSendError, type FileRef, type FileSender, type FileSendResult, type Sender } from '../src/index.js';
import { PageResidency } from '../src/files/page-residency.js';
import { evictFromPageCache, randomBytes, receive, sha256, tcpPair, waitFor, type TcpPair } from './helpers.js';

const KiB = 1 << 10;
const MiB = 1 << 20;
const GiB = 1 << 30;
/** What a send rejects with when the connection goes away under it. */
const CLOSED_CODES = /^ZCSEND_ERR_(SOCKET_CLOSED|CANCELLED|SEND_FAILED)$/;

/**
 * Writes the file's pages back and drops them from the page cache (GNU dd's `nocache` is
 * posix_fadvise DONTNEED), so `auto` finds it cold: the next read goes to the disk.
 */
export function dropFromPageCache(file: FileRef): void {
  const fd = fs.openSync(file.path, 'r');
  try {
    // tmpfs keeps its pages whatever the advice: say so rather than fail on an engine further on.
    if (!evictFromPageCache(file.path, () => pageCacheSays(fd, file.stat.size) !== true)) {
      throw new Error(`${file.path} stayed in the page cache (a tmpfs TMPDIR?)`);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether the kernel reports the whole file cached (cachestat), or null where it does not answer. */
export function pageCacheReport(file: FileRef): boolean | null {
  const fd = fs.openSync(file.path, 'r');
  try {
    return pageCacheSays(fd, file.stat.size);
  } finally {
    fs.closeSync(fd);
  }
}

function pageCacheSays(fd: number, size: number): boolean | null {
  return new PageResidency().resident(fd, 0, size);
}

/** Registers the suite's hooks; call once at the top of a test file. */
export function fileFixtures(prefix: string) {
  let dir = '';
  let fileCounter = 0;
  const pairs: TcpPair[] = [];
  const owned: Array<Sender | FileSender> = [];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const p of pairs.splice(0)) p.close();
    // FileSenders first: they wait for their sends, which need their Sender still open.
    const closing = owned.splice(0);
    await Promise.all(closing.filter((o): o is FileSender => 'sendFile' in o).map((f) => f.close()));
    await Promise.all(closing.filter((o): o is Sender => !('sendFile' in o)).map((s) => s.destroy()));
  });

  const pair = async (): Promise<TcpPair> => {
    const p = await tcpPair();
    pairs.push(p);
    return p;
  };

  const fixtures = {
    dir: () => dir,
    pair,
    /** The sending end of a new connection (both ends closed after the test). */
    async socket(): Promise<net.Socket> {
      return (await pair()).sender;
    },
    /** Closes `it` after the test (a FileSender with close(), a Sender with destroy()). */
    own<T extends Sender | FileSender>(it: T): T {
      owned.push(it);
      return it;
    },
    writeFile(data: Uint8Array, name = `f${++fileCounter}`): FileRef {
      const p = path.join(dir, name);
      fs.writeFileSync(p, data);
      return { path: p, stat: fs.statSync(p) };
    },
    /**
     * Sends each range in turn on one connection (after `head`, written through libuv first) and
     * checks the receiver got exactly those bytes. `data` is the file's bytes, or a function that
     * gives a range of them (for files too large to hold).
     */
    async fetchRanges(
      f: FileSender,
      file: FileRef,
      data: Uint8Array | ((start: number, end: number) => Uint8Array),
      ranges: Array<[number, number]>,
      head?: Buffer,
    ): Promise<FileSendResult[]> {
      const { sender: sock, receiver } = await pair();
      const slice = typeof data === 'function' ? data : (s: number, e: number) => data.subarray(s, e);
      const parts = ranges.map(([s, e]) => slice(s, e));
      if (head) parts.unshift(head);
      const total = parts.reduce((n, p) => n + p.length, 0);
      const received = receive(receiver, total);
      if (head) sock.write(head);
      const results: FileSendResult[] = [];
      for (const [s, e] of ranges) results.push(await f.sendFile(sock, file, s, e));
      expect(results.map((r) => r.bytes)).toEqual(ranges.map(([s, e]) => e - s));
      if (total > 0) {
        const got = await received;
        expect(got.bytes).toBe(total);
        expect(got.sha256).toBe(sha256(...parts));
      }
      return results;
    },
    /**
     * The whole file and ranges of it (unaligned, across a page and several MiB, one byte, empty)
     * after a response head written through libuv. Returns the non-empty results and their bytes.
     */
    async fetchMixedRanges(f: FileSender, file: FileRef, data: Uint8Array): Promise<{ sent: FileSendResult[]; bytes: number }> {
      const size = data.length;
      const ranges: Array<[number, number]> = [
        [0, size],
        [0, 1000],
        [MiB - 7, 3 * MiB + 13], // unaligned, longer than one turn or pipe load
        [4095, 4097], // across a page boundary
        [size - 5000, size],
        [12345, 12346],
        [100, 100],
      ];
      const head = Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`);
      const results = await fixtures.fetchRanges(f, file, data, ranges, head);
      return { sent: results.filter((r) => r.bytes > 0), bytes: ranges.reduce((n, [s, e]) => n + e - s, 0) };
    },
    /** Sends a range through a caller-provided fd whose path now names other bytes, and checks the fd is left open. */
    async fetchThroughCallerFd(f: FileSender): Promise<FileSendResult[]> {
      const data = randomBytes(2 * MiB + 3);
      const file = fixtures.writeFile(data);
      const fd = fs.openSync(file.path, 'r');
      try {
        // The path now names other bytes: the body must be the version the fd holds.
        fs.renameSync(fixtures.writeFile(randomBytes(data.length)).path, file.path);
        const results = await fixtures.fetchRanges(f, { ...file, fd }, data, [[0, data.length], [77, MiB + 5]]);
        expect(fs.fstatSync(fd).size).toBe(data.length);
        return results;
      } finally {
        fs.closeSync(fd);
      }
    },
    /**
     * Sends `file` whole to a peer that goes away after 1 MiB: the send rejects with a typed
     * error counted once. The caller then checks what is left.
     */
    async expectPeerAbortRejects(f: FileSender, file: FileRef): Promise<void> {
      const { sender: sock, receiver } = await pair();
      let got = 0;
      receiver.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got > MiB) receiver.destroy();
      });
      const err = await f.sendFile(sock, file, 0, file.stat.size).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ZcSendError);
      expect((err as ZcSendError).code).toMatch(CLOSED_CODES);
      expect(f.stats().errors).toBe(1);
      sock.destroy();
    },
    /**
     * A missing file, a path that no longer names the stat's version, a file (given by fd) shorter
     * than its stat, and a closed socket reject with typed errors, leaking no fd.
     */
    async expectBadFilesRejected(f: FileSender): Promise<void> {
      const { sender: sock } = await pair();
      const smallRef = fixtures.writeFile(randomBytes(100 * KiB));
      // Warm up: whatever the engine keeps open between responses (a pooled pipe) is open before counting.
      await f.sendFile(sock, smallRef, 0, 10);
      const fdsBefore = openFds();
      const missing: FileRef = { path: path.join(dir, 'missing'), stat: smallRef.stat };
      await expect(f.sendFile(sock, missing, 0, 100)).rejects.toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', syscall: 'open' });
      const stale: FileRef = { path: smallRef.path, stat: { ...smallRef.stat, size: 3 * MiB } as fs.Stats };
      await expect(f.sendFile(sock, stale, 0, 3 * MiB)).rejects.toMatchObject({ code: 'ZCSEND_ERR_FILE_CHANGED', syscall: 'fstat' });
      const fd = fs.openSync(smallRef.path, 'r');
      try {
        await expect(f.sendFile(sock, { ...stale, fd }, 0, 3 * MiB)).rejects.toMatchObject({ code: 'ZCSEND_ERR_SEND_FAILED', syscall: 'read' });
      } finally {
        fs.closeSync(fd);
      }
      sock.destroy();
      await expect(f.sendFile(sock, smallRef, 0, 5)).rejects.toMatchObject({ code: 'ZCSEND_ERR_SOCKET_CLOSED' });
      await waitFor(() => openFds() <= fdsBefore, 5000, 'fds to be closed');
    },
  };
  return fixtures;
}

export function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** The fd libuv holds for `socket` now, or -1 once its handle is gone. */
export function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd ?? -1;
}

export interface SparseFile {
  file: FileRef;
  /** The bytes of [start, end): zeros but for the marks. */
  expected(start: number, end: number): Buffer;
  remove(): void;
}

/** A sparse file of `size` bytes, zeros but for `marks` (bytes written at an offset). */
export function writeSparseFile(p: string, size: number, marks: Array<[number, Buffer]>): SparseFile {
  const fd = fs.openSync(p, 'w');
  try {
    fs.ftruncateSync(fd, size);
    for (const [at, bytes] of marks) fs.writeSync(fd, bytes, 0, bytes.length, at);
  } finally {
    fs.closeSync(fd);
  }
  return {
    file: { path: p, stat: fs.statSync(p) },
    expected(start, end) {
      const b = Buffer.alloc(end - start);
      for (const [at, bytes] of marks) {
        const from = Math.max(at, start);
        const to = Math.min(at + bytes.length, end);
        if (from < to) bytes.copy(b, from - start, from - at, to - at);
      }
      return b;
    },
    remove: () => fs.rmSync(p, { force: true }),
  };
}

/** A listener opened before the fd number is freed, so that it does not take the number itself. */
export async function listener(): Promise<net.Server> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** Opens connections until one end holds `fd`; every byte either end receives is counted. */
export async function connectionsUntilFd(server: net.Server, fd: number, stray: { bytes: number }): Promise<{ reused: boolean; sockets: net.Socket[] }> {
  const { port } = server.address() as net.AddressInfo;
  const sockets: net.Socket[] = [];
  let reused = false;
  for (let i = 0; i < 32 && !reused; i++) {
    const client = net.connect(port, '127.0.0.1');
    const [accepted] = (await once(server, 'connection')) as [net.Socket];
    await once(client, 'connect').catch(() => {});
    for (const s of [client, accepted]) {
      s.on('error', () => {});
      s.on('data', (d: Buffer) => (stray.bytes += d.length));
      sockets.push(s);
    }
    reused = fdOf(client) === fd || fdOf(accepted) === fd;
  }
  server.close();
  return { reused, sockets };
}

/**
 * The sparse file of the splice and sendfile suites: 4 GiB + 8 KiB, marks across the 4 GiB
 * boundary and at the end, and the ranges they fetch (one of several MiB ending past the boundary).
 */
export function sparseAcross4GiB(dir: string): SparseFile & { size: number; wanted: Array<[number, number]> } {
  const size = 4 * GiB + 8192;
  const sparse = writeSparseFile(path.join(dir, 'sparse'), size, [
    [4 * GiB - 3000, randomBytes(6000)], // across the boundary
    [4 * GiB + 5000, randomBytes(64)],
    [size - 10, randomBytes(10)],
  ]);
  const wanted: Array<[number, number]> = [
    [4 * GiB - 1000, 4 * GiB + 1000],
    [4 * GiB - 3 * MiB - 5, 4 * GiB + 6000], // several turns / pipe loads, ending past the boundary
    [size - 10, size],
  ];
  return { ...sparse, size, wanted };
}

/** Resumes `receiver` and reads to its end: what arrived must be a proper prefix of `data`. */
export async function expectPrefixThenEnd(receiver: net.Socket, data: Uint8Array): Promise<void> {
  const prefix: Buffer[] = [];
  receiver.on('data', (d: Buffer) => prefix.push(d));
  const ended = once(receiver, 'end');
  receiver.resume();
  await ended;
  const got = Buffer.concat(prefix);
  expect(got.length).toBeLessThan(data.length);
  expect(sha256(got)).toBe(sha256(data.subarray(0, got.length)));
}

/** The new connections work and carry only their own bytes: each end gets its peer's 4, nothing more. */
export async function expectOwnBytesOnly(sockets: net.Socket[], stray: { bytes: number }): Promise<void> {
  for (const s of sockets) s.write('ping');
  await waitFor(() => stray.bytes === 4 * sockets.length, 5000, 'the new connections to exchange their own bytes');
  await new Promise((r) => setTimeout(r, 50));
  expect(stray.bytes).toBe(4 * sockets.length);
}
