// How the fast path reads and writes a connection: through the ring (a ConnectionDriver: one
// armed multishot receive per connection, ring sends submitted per completion batch), or through
// libuv's stream (the copy backend, TLS, no provided buffers). The lane sees one interface.
import type * as net from 'node:net';
import type { ConnectionDriver, RingConnection } from '@zcsend/core';

export interface LaneEvents {
  /** Bytes received, in order. With `transientChunks`, the chunk is reused once this returns. */
  data(chunk: Buffer): void;
  /** The peer's FIN. */
  end(): void;
}

export interface LaneIo {
  /** Chunks handed to `data` are views of reused memory: copy what is kept past the call. */
  readonly transientChunks: boolean;
  /** Bytes written and not yet taken by the kernel (ring) or libuv. */
  readonly writableLength: number;
  /** Queue bytes after earlier writes. False: wait for whenWritten() before writing more. */
  write(data: Uint8Array): boolean;
  /**
   * `callback` once this transport holds no bytes of ours any more (ring: all accepted by the
   * kernel; libuv: drained below its high-water mark), or the socket closed.
   */
  whenWritten(callback: () => void): void;
  pause(): void;
  resume(): void;
  /** Our FIN, after every queued write. */
  end(): void;
  /** Stop reading for the lane; `callback` once the socket's reads are libuv's to start and every byte received was delivered. */
  release(callback: () => void): void;
}

/** libuv's stream: what the fast path always had. */
class StreamIo implements LaneIo {
  readonly transientChunks = false;
  private readonly onData: (chunk: Buffer) => void;
  private readonly onEnd: () => void;

  constructor(
    private readonly socket: net.Socket,
    events: LaneEvents,
  ) {
    this.onData = (chunk) => events.data(chunk);
    this.onEnd = () => events.end();
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.resume(); // accepted paused (pauseOnConnect)
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  write(data: Uint8Array): boolean {
    return this.socket.write(data);
  }

  whenWritten(callback: () => void): void {
    const { socket } = this;
    if (!socket.writableNeedDrain || socket.destroyed) return callback();
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      callback();
    };
    socket.on('drain', done);
    socket.on('close', done);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  release(callback: () => void): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    callback();
  }
}

/** The ring: a driven connection. */
class RingIo implements LaneIo {
  readonly transientChunks = true;
  private connection: RingConnection | null = null;

  constructor(
    private readonly socket: net.Socket,
    private readonly events: LaneEvents,
  ) {}

  /** Drives the socket through `driver`; false (the socket untouched) when it cannot. */
  attach(driver: ConnectionDriver): boolean {
    this.connection = driver.drive(this.socket, {
      onData: (chunk) => this.events.data(chunk),
      // Once our FIN is out too, the connection closes the socket (libuv never read the peer's).
      onEnd: () => this.events.end(),
      onError: () => {
        // The connection destroyed the socket; 'close' tells the lane.
      },
    });
    return this.connection !== null;
  }

  get writableLength(): number {
    return this.connection!.writableLength;
  }

  write(data: Uint8Array): boolean {
    return this.connection!.write(data);
  }

  whenWritten(callback: () => void): void {
    this.connection!.whenWritten(callback);
  }

  pause(): void {
    this.connection!.pause();
  }

  resume(): void {
    this.connection!.resume();
  }

  /** FIN after the queued writes, however the peer's FIN and the writes interleave (the connection decides when the socket closes). */
  end(): void {
    this.connection!.end();
  }

  release(callback: () => void): void {
    this.connection!.release(callback);
  }
}

/** The transport for a new connection (accepted paused): the ring where `driver` can drive it, else libuv's stream. */
export function laneIo(socket: net.Socket, driver: ConnectionDriver | null, events: LaneEvents): LaneIo {
  if (driver) {
    const ring = new RingIo(socket, events);
    if (ring.attach(driver)) return ring;
  }
  return new StreamIo(socket, events);
}
