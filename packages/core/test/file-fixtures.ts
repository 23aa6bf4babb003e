// Shared by the real-socket file-engine suites: a temp dir of test files, connections and
// senders closed after each test, and a range fetch checked end to end by sha256.
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FileRef, FileSender, FileSendResult, Sender } from '../src/index.js';
import { receive, sha256, tcpPair, type TcpPair } from './helpers.js';

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

  return {
    dir: () => dir,
    pair,
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
     * checks the receiver got exactly those bytes.
     */
    async fetchRanges(f: FileSender, file: FileRef, data: Uint8Array, ranges: Array<[number, number]>, head?: Buffer): Promise<FileSendResult[]> {
      const { sender: sock, receiver } = await pair();
      const parts = ranges.map(([s, e]) => data.subarray(s, e));
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
  };
}

export function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}
