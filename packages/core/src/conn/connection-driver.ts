import type * as net from 'node:net';
import { ZcSendError, errnoName } from '../errors.js';
import { getSender, type Sender } from '../sender.js';
import { socketEligibility } from '../sockets.js';
import { ReceivePool } from './receive-pool.js';
import { RingConnection, type ConnectionCounters, type ConnectionHandlers } from './ring-connection.js';

export interface ConnectionDriverOptions {
  /** The Sender whose ring the connections use. Default `getSender()`, looked up once. */
  sender?: Sender;
  /** Bytes per receive buffer. Default 4 KiB: a whole request head, as browsers send them. */
  bufferSize?: number;
  /** Receive buffers in the pool (a power of two). Default 512 (2 MiB with the default size). */
  buffers?: number;
}

export interface ConnectionStats extends ConnectionCounters {
  /** Why connections are not driven by the ring here, or null. */
  unavailableReason: string | null;
  /** Bytes of the receive pool (0 until the first connection). */
  poolBytes: number;
}

export const DEFAULT_RECEIVE_BUFFER_BYTES = 4096;
export const DEFAULT_RECEIVE_BUFFERS = 512;

interface ReadingHandle {
  reading?: boolean;
}

function positivePowerOfTwo(name: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1 || value > max || (value & (value - 1)) !== 0) {
    throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', `option ${name} must be a power of two from 1 to ${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * Drives TCP connections through the Sender's ring: a multishot receive into a shared pool of
 * provided buffers, and ring sends, instead of libuv's read and write paths. For servers whose
 * per-request cost is dominated by those paths (small responses): one io_uring_enter carries the
 * writes of a whole completion batch, and no read syscall, Buffer allocation or stream event
 * runs per request. Where the ring cannot do it (copy backend, no provided buffers, TLS),
 * `drive()` returns null and the caller keeps libuv's stream.
 */
export class ConnectionDriver {
  readonly sender: Sender;
  private readonly bufferSize: number;
  private readonly buffers: number;
  private pool: ReceivePool | null = null;
  private reason: string | null = null;
  private closed = false;
  private readonly live = new Set<RingConnection>();
  private readonly counters: ConnectionCounters = {
    driven: 0,
    active: 0,
    chunks: 0,
    bytesReceived: 0,
    writes: 0,
    bytesWritten: 0,
    rearms: 0,
    pauses: 0,
    released: 0,
    failures: 0,
  };

  constructor(options: ConnectionDriverOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', 'options must be an object');
    this.bufferSize = positivePowerOfTwo('bufferSize', options.bufferSize, DEFAULT_RECEIVE_BUFFER_BYTES, 1 << 20);
    this.buffers = positivePowerOfTwo('buffers', options.buffers, DEFAULT_RECEIVE_BUFFERS, 32768);
    this.sender = options.sender ?? getSender();
  }

  /** Why drive() returns null for every socket here, or null while it may work. */
  get unavailableReason(): string | null {
    if (this.closed) return 'the driver is closed';
    if (this.reason) return this.reason;
    if (this.sender.backend !== 'io_uring') return this.sender.fallbackReason ?? 'copy backend';
    return null;
  }

  /**
   * Takes over the connection's reads and writes, or returns null (nothing changed: keep using
   * the socket as usual). The socket must not be reading through libuv yet: accept it paused
   * (`net.Server` option `pauseOnConnect`, or `server.pauseOnConnect = true`). While driven,
   * write through the connection, not the socket; `release()` gives the socket back.
   */
  drive(socket: net.Socket, handlers: ConnectionHandlers): RingConnection | null {
    const handle = (socket as unknown as { _handle?: ReadingHandle | null })._handle;
    if (handle?.reading === true || socket.readableLength > 0) {
      throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', 'the socket is already reading through libuv: accept it paused (pauseOnConnect)');
    }
    if (this.unavailableReason !== null || socket.destroyed) return null;
    const eligibility = socketEligibility(socket);
    if (eligibility.reason) return null;
    const raw = this.sender.ringOps();
    if (!raw) return null;
    const pool = this.openPool(raw.ring);
    if (!pool) return null;
    const connection = new RingConnection(socket, eligibility.fd, raw, pool, this.counters, handlers, (c) => this.forget(c));
    if (!connection.start()) return null;
    this.live.add(connection);
    this.counters.driven++;
    this.counters.active++;
    socket.once('close', () => connection.close());
    return connection;
  }

  /**
   * Drive no new sockets, and give the receive pool back once the connections driven so far are
   * gone. The ring is usually the thread's (getSender()) and outlives this driver: without this
   * the pool stays registered on it, and pinned in memory, for good.
   */
  close(): void {
    this.closed = true;
    this.freePoolIfIdle();
  }

  stats(): ConnectionStats {
    return { ...this.counters, unavailableReason: this.unavailableReason, poolBytes: this.pool ? this.bufferSize * this.buffers : 0 };
  }

  private openPool(ring: Parameters<typeof ReceivePool.open>[0]): ReceivePool | null {
    if (this.pool) return this.pool;
    const opened = ReceivePool.open(ring, this.bufferSize, this.buffers);
    if (typeof opened === 'number') {
      this.reason = `the ring cannot receive into provided buffers (${errnoName(-opened)})`;
      return null;
    }
    this.pool = opened;
    return opened;
  }

  private forget(connection: RingConnection): void {
    if (this.live.delete(connection)) this.counters.active--;
    this.freePoolIfIdle();
  }

  /** Closed and no connection left: no receive is armed, so none can pick a pool buffer. */
  private freePoolIfIdle(): void {
    if (!this.closed || this.live.size > 0 || !this.pool) return;
    this.pool.close();
    this.pool = null;
  }
}
