import type * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import { IORING_CQE_F_MORE, MSG_WAITALL } from '../constants.js';
import { violationChannel } from '../diagnostics.js';
import { ZcSendError, errnoError } from '../errors.js';
import type { RawOp, RawRing } from '../sender/public-types.js';
import { RING_CLOSED } from '../sender/raw-ring.js';
import { libuvIdle, refreshIdleTimer } from '../sockets.js';
import type { ReceivePool } from './receive-pool.js';

const { ECANCELED, ENOBUFS } = osConstants.errno;
const IORING_CQE_F_BUFFER = 1 << 0;
const IORING_CQE_BUFFER_SHIFT = 16;
const EMPTY = Buffer.alloc(0);
/** Bytes queued (not yet accepted by the kernel) at which write() asks the caller to wait, as net.Socket's default. */
const WRITE_HIGH_WATER = 16 * 1024;

/** Why an op could not be queued: RING_CLOSED (-EBADFD) is the Sender closing its ring or being destroyed. */
function queueError(rc: number, what: string): ZcSendError {
  if (rc === RING_CLOSED) return new ZcSendError('ZCSEND_ERR_SENDER_CLOSED', `${what}: the sender is closed`, { errno: -rc });
  return errnoError('ZCSEND_ERR_SUBMIT_FAILED', rc, 'io_uring_enter', what);
}

/** What a driven connection tells its owner. */
export interface ConnectionHandlers {
  /**
   * Bytes received, in order. `chunk` is a view of a shared receive buffer that is reused as soon
   * as this returns: copy what you keep.
   */
  onData(chunk: Buffer): void;
  /**
   * The peer ended its side (FIN). Nothing more is received; writing may go on. Once end() has
   * sent our FIN too, the connection closes the socket.
   */
  onEnd(): void;
  /**
   * Receiving or writing failed (e.g. ECONNRESET): the connection destroyed the socket (its byte
   * stream cannot be trusted any more). 'close' follows.
   */
  onError(err: ZcSendError): void;
}

/** The driver's counters, updated by every connection. */
export interface ConnectionCounters {
  driven: number;
  active: number;
  chunks: number;
  bytesReceived: number;
  writes: number;
  bytesWritten: number;
  /** Receives armed again after the pool ran dry (-ENOBUFS) or the kernel ended them early. */
  rearms: number;
  pauses: number;
  released: number;
  failures: number;
}

/**
 * One TCP connection whose reads and writes go through the ring instead of libuv's stream:
 * a multishot receive stays armed on the socket, each chunk lands in a pool buffer and reaches
 * `onData` inside the Sender's completion batch, and writes are ring sends (MSG_WAITALL), one in
 * flight at a time, submitted together with everything else the batch queued. Node's socket
 * object stays the owner of the fd (timeouts, close, resetAndDestroy).
 *
 * fd safety (DESIGN.md "Sockets owned by libuv"): every SQE names the fd and is queued right
 * after checking the socket still has it, and submitted before control returns to the event
 * loop. An armed receive holds the socket's file, so closing the fd does not end it: the
 * socket's 'close' cancels every op (close()), and only then does the kernel let the socket go.
 */
export class RingConnection {
  /** user_data of the live receive, 0 when none is armed. */
  private recvId = 0;
  private cancelSent = false;
  /** The owner wants bytes (not paused). */
  private receiving = true;
  /** No more receiving: the peer ended, receiving failed, or the connection closed or was released. */
  private done = false;
  private closed = false;
  /** The peer's FIN came through the receive. */
  private peerEnded = false;
  /** end() handed our FIN to the socket. */
  private finSent = false;
  private onReleased: (() => void) | null = null;
  private readonly pending: Uint8Array[] = [];
  private queuedBytes = 0;
  private inFlight: Uint8Array | null = null;
  private writtenWaiters: Array<() => void> = [];
  /** libuv's handle when driving began: while the socket still has this one, it has `fd`. */
  private readonly handle: unknown;

  private readonly recvOp: RawOp = {
    prepare: (ring, userData) => {
      const rc = ring.recvMultishot!(this.fd, this.pool.group, userData);
      if (rc >= 0) {
        this.recvId = userData;
        this.cancelSent = false;
      }
      return rc;
    },
    onComplete: (res, flags) => this.onReceive(res, flags),
    target: this,
  };

  /** user_data of the send in flight, 0 when none (or while waiting for libuv's own writes). */
  private sendId = 0;
  private readonly sendOp: RawOp = {
    prepare: (ring, userData) => {
      const rc = ring.send(this.fd, this.inFlight!, 0, this.inFlight!.byteLength, MSG_WAITALL, userData);
      if (rc >= 0) this.sendId = userData;
      return rc;
    },
    onComplete: (res) => this.onSent(res),
    target: this,
  };

  /** @internal Made by ConnectionDriver.drive(). */
  constructor(
    readonly socket: net.Socket,
    /** The fd every SQE of this connection names (checked against the socket's before each). */
    readonly fd: number,
    private readonly raw: RawRing,
    private readonly pool: ReceivePool,
    private readonly counters: ConnectionCounters,
    private readonly handlers: ConnectionHandlers,
    private readonly onGone: (connection: RingConnection) => void,
  ) {
    this.handle = (socket as unknown as { _handle: unknown })._handle;
  }

  /**
   * The socket is open and still on the handle whose fd the ops name (destroy() drops the handle
   * before libuv closes the fd). Cheaper than reading the fd back through the handle.
   */
  private hasFd(): boolean {
    return !this.socket.destroyed && (this.socket as unknown as { _handle: unknown })._handle === this.handle;
  }

  /** Bytes written through this connection and not yet accepted by the kernel. */
  get writableLength(): number {
    return this.queuedBytes;
  }

  /** @internal Arms the first receive; false (nothing armed, the socket untouched) when it could not be queued. */
  start(): boolean {
    return this.hasFd() && this.raw.queueOne(this.recvOp) >= 0;
  }

  /** Stop receiving (backpressure). A chunk or two already received may still arrive. */
  pause(): void {
    if (!this.receiving) return;
    this.receiving = false;
    this.counters.pauses++;
    this.cancelReceive();
  }

  resume(): void {
    if (this.receiving) return;
    this.receiving = true;
    this.arm();
  }

  /**
   * Queue `data` behind earlier writes. The caller must not touch it until whenWritten() calls
   * back. False when the queue has reached the high-water mark: wait for whenWritten() before
   * writing more. Ignored (false) once the connection closed or is being released.
   */
  write(data: Uint8Array): boolean {
    if (this.closed || this.onReleased) return false;
    if (data.byteLength === 0) return this.queuedBytes < WRITE_HIGH_WATER;
    this.pending.push(data);
    this.queuedBytes += data.byteLength;
    if (this.inFlight === null) this.pump();
    return this.queuedBytes < WRITE_HIGH_WATER;
  }

  /** `callback` once every byte written so far was accepted by the kernel, or the connection closed. */
  whenWritten(callback: () => void): void {
    if (this.queuedBytes === 0 || this.closed) callback();
    else this.writtenWaiters.push(callback);
  }

  /**
   * Give the socket back to libuv: receiving stops and queued writes finish, then `callback`
   * runs once no ring op names the socket. Every chunk received before that reached onData first;
   * bytes the peer sends later (and its FIN) are left in the socket for libuv to read once the
   * owner resumes it.
   */
  release(callback: () => void): void {
    if (this.closed || this.onReleased) return;
    this.onReleased = callback;
    this.receiving = false;
    this.cancelReceive();
    this.maybeReleased();
  }

  /** The socket is closing: cancel whatever the ring still has for it. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.done = true;
    this.onReleased = null;
    this.pending.length = 0;
    this.cancelReceive();
    // A send in flight ends with -ECANCELED (or the bytes it managed); either way it is over.
    if (this.sendId !== 0 && this.raw.ring.cancel(this.sendId) >= 0) this.raw.submit();
    this.queuedBytes = 0;
    this.forgetIfIdle();
    // Last: the connection is settled by now, whatever a waiter does.
    this.callWaiters();
  }

  /**
   * FIN once every queued write is out (a FIN through libuv now could overtake them). libuv never
   * reads a driven socket, so Node never sees the peer's FIN and would keep the socket open for
   * good: once both sides have ended, the socket is closed here (FIN, then close), as Node does.
   */
  end(): void {
    this.whenWritten(() => {
      if (this.socket.destroyed || this.finSent) return;
      this.finSent = true;
      if (this.peerEnded) this.socket.destroySoon();
      else this.socket.end();
    });
  }

  private arm(): void {
    if (this.recvId !== 0 || this.done || !this.receiving || this.onReleased || this.closed) return;
    if (!this.hasFd()) return this.fail(new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket closed'));
    const rc = this.raw.queueOne(this.recvOp);
    if (rc < 0) this.fail(queueError(rc, 'could not arm the receive'));
  }

  private cancelReceive(): void {
    if (this.recvId === 0 || this.cancelSent) return;
    this.cancelSent = true;
    // Submitted now (or at the batch's end): the socket may be going away for good.
    if (this.raw.ring.cancel(this.recvId) >= 0) this.raw.submit();
  }

  private onReceive(res: number, flags: number): void {
    const last = (flags & IORING_CQE_F_MORE) === 0;
    if (last) this.recvId = 0;
    if (res > 0) {
      if ((flags & IORING_CQE_F_BUFFER) === 0) {
        violationChannel.publish({ kind: 'receive-without-buffer', res, flags });
        return this.fail(new ZcSendError('ZCSEND_ERR_PROTOCOL', 'a receive completed without naming its buffer'));
      }
      const id = flags >>> IORING_CQE_BUFFER_SHIFT;
      this.counters.chunks++;
      this.counters.bytesReceived += res;
      try {
        if (!this.closed) {
          refreshIdleTimer(this.socket);
          this.handlers.onData(this.pool.view(id, res));
        }
      } finally {
        this.pool.recycle(id);
      }
      // The kernel may end a multishot receive after a chunk (no F_MORE): arm it again.
      if (last) this.afterReceiveEnded(true);
      return;
    }
    if (res === 0 && !this.onReleased && !this.closed) {
      // The peer's FIN. (While releasing it stays for libuv to read: read(2) returns 0 again.)
      this.done = true;
      this.peerEnded = true;
      const finSent = this.finSent;
      this.handlers.onEnd();
      if (finSent && !this.socket.destroyed) this.socket.destroySoon();
    } else if (res < 0 && res !== -ENOBUFS && !(res === -ECANCELED && this.cancelSent) && !this.closed && !this.onReleased) {
      // Not our own cancel: the peer reset, or the Sender cancelled everything (destroy, ring lost).
      return this.fail(errnoError('ZCSEND_ERR_RECV_FAILED', res, 'io_uring_enter', 'receive failed'));
    }
    this.afterReceiveEnded(res === -ENOBUFS);
  }

  /** The receive is over: re-arm it, finish a release, or let go once closed. */
  private afterReceiveEnded(rearm: boolean): void {
    if (this.closed) return this.forgetIfIdle();
    if (this.onReleased) return this.maybeReleased();
    if (rearm && this.receiving) this.counters.rearms++;
    this.arm();
  }

  private pump(): void {
    const next = this.pending.shift();
    if (next === undefined) {
      this.callWaiters();
      this.maybeReleased();
      return;
    }
    if (!this.hasFd()) {
      this.pending.unshift(next);
      return this.fail(new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket closed'));
    }
    if (!libuvIdle(this.socket)) {
      // Bytes written through the socket itself go first (an empty write calls back after them).
      this.pending.unshift(next);
      this.inFlight = EMPTY;
      this.socket.write(EMPTY, () => {
        this.inFlight = null;
        if (this.closed) this.forgetIfIdle();
        else this.pump();
      });
      return;
    }
    this.inFlight = next;
    const rc = this.raw.queueOne(this.sendOp);
    if (rc < 0) {
      this.inFlight = null;
      this.fail(queueError(rc, 'could not queue the write'));
    }
  }

  private onSent(res: number): void {
    const data = this.inFlight!;
    this.inFlight = null;
    this.sendId = 0;
    if (this.closed) return this.forgetIfIdle();
    if (res !== data.byteLength) {
      // MSG_WAITALL: short only after an error mid-way. The response framing is broken.
      const err =
        res < 0 ? errnoError('ZCSEND_ERR_SEND_FAILED', res, 'io_uring_enter', 'write failed') : new ZcSendError('ZCSEND_ERR_SEND_FAILED', `write cut short at ${res} of ${data.byteLength} bytes`);
      return this.fail(err);
    }
    this.counters.writes++;
    this.counters.bytesWritten += res;
    this.queuedBytes -= res;
    refreshIdleTimer(this.socket);
    this.pump();
  }

  private callWaiters(): void {
    if (this.writtenWaiters.length === 0 || (this.queuedBytes > 0 && !this.closed)) return;
    const waiters = this.writtenWaiters;
    this.writtenWaiters = [];
    for (const callback of waiters) callback();
  }

  private maybeReleased(): void {
    const callback = this.onReleased;
    if (callback === null || this.recvId !== 0 || this.inFlight !== null || this.pending.length > 0) return;
    this.onReleased = null;
    this.done = true;
    this.closed = true; // nothing of ours touches the socket any more
    this.counters.released++;
    this.onGone(this);
    callback();
  }

  /** Closed and the kernel holds nothing of ours for this socket any more. */
  private forgetIfIdle(): void {
    if (this.closed && this.recvId === 0 && this.inFlight === null) this.onGone(this);
  }

  private fail(err: ZcSendError): void {
    if (this.closed) return;
    this.counters.failures++;
    // The socket first: the waiters close() calls back must find it destroyed, not writable.
    if (!this.socket.destroyed) this.socket.destroy();
    this.close();
    this.handlers.onError(err);
  }
}
