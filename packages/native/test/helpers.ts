// Shared test plumbing: availability gating, a ring harness that records
// CQEs, and real loopback sockets whose fds the ring sends on.
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';

import { load, type NativeBinding, type NativeRing, type RingOptions } from '../index.js';

const loaded = load();
export const binding: NativeBinding | null = loaded.binding;
export const probe = binding ? binding.probe() : null;
/** Why io_uring tests cannot run here, or null. */
export const unavailableReason: string | null =
  loaded.reason ?? (probe && !probe.available ? probe.reason ?? 'io_uring unavailable' : null);
export const requireUring = process.env.ZCSEND_REQUIRE_URING === '1';
/** Skip (rather than fail) io_uring tests: unavailable and not required. */
export const skipUring = unavailableReason !== null && !requireUring;
if (skipUring) console.warn(`[@zcsend/native] skipping io_uring tests: ${unavailableReason}`);

/** The binding, for tests that only run when it loaded. */
export function native(): NativeBinding {
  if (!binding) throw new Error(`native addon unavailable: ${unavailableReason}`);
  return binding;
}

export interface Cqe {
  userData: number;
  hi: number;
  res: number;
  flags: number;
}

export const F_MORE = 2;
export const F_NOTIF = 8;
export const ZC_COPIED = 0x80000000;

/** A ring, ref'd while the test waits, recording every CQE it reaps. */
export class Harness {
  readonly ring: NativeRing;
  readonly cqes: Cqe[] = [];
  callbacks = 0;
  private readonly waiters = new Set<() => void>();

  constructor(options: RingOptions = {}) {
    this.ring = new (native().Ring)(options, (count) => {
      this.callbacks++;
      const a = this.ring.cqes;
      for (let i = 0; i < count; i++) {
        this.cqes.push({ userData: a[i * 4] >>> 0, hi: a[i * 4 + 1] >>> 0, res: a[i * 4 + 2], flags: a[i * 4 + 3] >>> 0 });
      }
      for (const wake of [...this.waiters]) wake();
    });
    this.ring.ref();
  }

  /** CQEs of one op (not of cancel requests). */
  of(userData: number): Cqe[] {
    return this.cqes.filter((c) => c.userData === userData && c.hi === 0);
  }

  waitFor(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!predicate()) return;
        this.waiters.delete(wake);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`timed out waiting for ${what}; CQEs so far: ${JSON.stringify(this.cqes)}`));
      }, timeoutMs);
      this.waiters.add(wake);
    });
  }

  /** Wait for an op's first CQE and, when it has F_MORE, its notification. */
  async settle(userData: number, timeoutMs?: number): Promise<{ first: Cqe; notif: Cqe | null }> {
    await this.waitFor(() => {
      const list = this.of(userData);
      return list.length > 0 && (!(list[0].flags & F_MORE) || list.length > 1);
    }, `op ${userData} to settle`, timeoutMs);
    const [first, notif] = this.of(userData);
    return { first, notif: notif ?? null };
  }

  close(): void {
    this.ring.unref();
    this.ring.close();
  }
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function fdOf(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no fd');
  return fd;
}

export function dgramFd(socket: dgram.Socket): number {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const fd = state && (socket as unknown as Record<symbol, { handle?: { fd?: number } }>)[state]?.handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('dgram socket has no fd');
  return fd;
}

export interface TcpPair {
  client: net.Socket;
  server: net.Socket;
  close(): Promise<void>;
}

/** A connected loopback TCP pair: `client` is what the tests send from. */
export async function tcpPair(): Promise<TcpPair> {
  const listener = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  const server = await accepted;
  return {
    client,
    server,
    async close() {
      client.destroy();
      server.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

/**
 * What a test left open, closed for the next one: the harness first (its ring may still name the
 * sockets), then the pair. Returns the cleared slots: `({ harness, pair } = await closeTestResources(harness, pair))`.
 */
export async function closeTestResources(harness: Harness | null, pair: TcpPair | null): Promise<{ harness: null; pair: null }> {
  harness?.close();
  await pair?.close();
  return { harness: null, pair: null };
}

/** Read exactly `expected` bytes (or fail after a timeout). */
export function collect(socket: net.Socket, expected: number, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const done = () => {
      clearTimeout(timer);
      socket.off('data', onData);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= expected) {
        done();
        resolve(Buffer.concat(chunks));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`received ${total} of ${expected} bytes`));
    }, timeoutMs);
    socket.on('data', onData);
  });
}

/** Deterministic pseudo-random bytes (fast, no entropy needed). */
export function pattern(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    if ((i & 3) === 0) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
    out[i] = (x >>> ((i & 3) * 8)) & 0xff;
  }
  return out;
}

export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
