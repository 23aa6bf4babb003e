// StallCheck: verdicts from the acknowledged-bytes count (injected and the kernel's own), the
// idle timer re-armed only when the connection is kept, and tcpBytesAcked on real sockets.
import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { StallCheck, tcpBytesAcked, keepsConnection } from '../src/index.js';

const mode = process.env.ZCSEND_DISABLE === '1' ? 'copy' : 'uring';
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A connected TCP pair on 127.0.0.1: [server side, client side]. */
async function tcpPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [[side]] = await Promise.all([accepted, once(client, 'connect')]);
  cleanups.push(() => {
    side.destroy();
    client.destroy();
    server.close();
  });
  return [side, client];
}

describe(`StallCheck (${mode})`, () => {
  it('watches first, keeps a peer taking at least minProgressBytes per period, cuts one that does not', () => {
    let acked = 1000;
    const socket = new net.Socket();
    const check = new StallCheck({ minProgressBytes: 100, bytesAcked: () => acked });
    expect(check.onTimeout(socket)).toBe('watching');
    acked += 100;
    expect(check.onTimeout(socket)).toBe('progressing');
    acked += 5000;
    expect(check.onTimeout(socket)).toBe('progressing');
    acked += 99;
    expect(check.onTimeout(socket)).toBe('stalled');
    // Judged afresh after a cut (a socket is never reused, but the state must not linger).
    expect(check.onTimeout(socket)).toBe('watching');
    expect(check.stats()).toEqual({ watching: 2, progressing: 2, stalled: 1, unknown: 0 });
    expect([...(['watching', 'progressing', 'stalled', 'unknown'] as const)].map(keepsConnection)).toEqual([true, true, false, false]);
  });

  it('keeps the state per socket, and says unknown without a count or with the check off', () => {
    const a = new net.Socket();
    const b = new net.Socket();
    const counts = new Map([[a, 0], [b, 0]]);
    const check = new StallCheck({ minProgressBytes: 10, bytesAcked: (s) => counts.get(s) ?? null });
    expect(check.onTimeout(a)).toBe('watching');
    counts.set(a, 50);
    expect(check.onTimeout(b)).toBe('watching');
    expect(check.onTimeout(a)).toBe('progressing');
    expect(check.onTimeout(b)).toBe('stalled');
    expect(check.onTimeout(new net.Socket())).toBe('unknown');
    expect(new StallCheck({ minProgressBytes: 0, bytesAcked: () => 1 }).onTimeout(a)).toBe('unknown');
  });

  it('rejects bad options with ZCSEND_ERR_INVALID_OPTION', () => {
    for (const minProgressBytes of [-1, 1.5, Number.NaN, '1' as never]) {
      expect(() => new StallCheck({ minProgressBytes })).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_OPTION' }));
    }
    expect(() => new StallCheck({ bytesAcked: 5 as never })).toThrow(expect.objectContaining({ code: 'ZCSEND_ERR_INVALID_OPTION' }));
    expect(new StallCheck().minProgressBytes).toBe(64 * 1024);
  });

  it("re-arms the socket's idle timer when it keeps the connection, not when it cuts it", async () => {
    const [side] = await tcpPair();
    let acked = 0;
    const check = new StallCheck({ minProgressBytes: 1, bytesAcked: () => acked });
    const verdicts: string[] = [];
    side.setTimeout(60);
    side.on('timeout', () => {
      acked += verdicts.length < 2 ? 1 : 0;
      verdicts.push(check.onTimeout(side));
    });
    await new Promise((r) => setTimeout(r, 600));
    // Kept twice (each re-armed the timer), then cut: no timer after that (Node does not re-arm a fired one).
    expect(verdicts).toEqual(['watching', 'progressing', 'stalled']);
  });

  it('tcpBytesAcked follows what the peer takes, and is null where there is no TCP count', async () => {
    const [side, client] = await tcpPair();
    const start = tcpBytesAcked(side);
    expect(start).toBe(0);
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    let got = 0;
    client.on('data', (d: Buffer) => (got += d.length));
    await new Promise<void>((r) => side.write(body, () => r()));
    while (got < body.length) await new Promise((r) => setTimeout(r, 5));
    // Everything the peer read it has acknowledged (an ACK may trail the read by a moment).
    for (let i = 0; i < 100 && tcpBytesAcked(side) !== body.length; i++) await new Promise((r) => setTimeout(r, 5));
    expect(tcpBytesAcked(side)).toBe(body.length);
    side.destroy();
    expect(tcpBytesAcked(side)).toBeNull();

    // A Unix stream socket has no TCP_INFO.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-stall-'));
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(path.join(dir, 's'), r));
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    const unix = net.connect(path.join(dir, 's'));
    const [[unixSide]] = await Promise.all([accepted, once(unix, 'connect')]);
    expect(tcpBytesAcked(unixSide)).toBeNull();
    expect(new StallCheck().onTimeout(unixSide)).toBe('unknown');
    unix.destroy();
    unixSide.destroy();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('with the kernel count: a peer that stops reading is stalled, one that reads is progressing', async () => {
    const [side, client] = await tcpPair();
    const check = new StallCheck({ minProgressBytes: 64 * 1024 });
    client.pause();
    side.write(Buffer.alloc(32 * 1024 * 1024));
    await new Promise((r) => setTimeout(r, 100)); // the client's receive buffer fills
    expect(check.onTimeout(side)).toBe('watching');
    await new Promise((r) => setTimeout(r, 100));
    expect(check.onTimeout(side)).toBe('stalled');
    expect(check.onTimeout(side)).toBe('watching');
    client.resume();
    await new Promise((r) => setTimeout(r, 100));
    expect(check.onTimeout(side)).toBe('progressing');
  });
});
