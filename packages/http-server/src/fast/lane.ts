// The file server's fast path. Each connection starts here: plain GET/HEAD requests for files
// (a full 200 or a 304) are answered straight on the socket, without node:http's per-request
// objects, which cost more than the rest of a small-file response. The first request the fast
// path does not take (anything readRequestHead or StaticServer.fastPlan declines) is handed,
// with every byte after it, to node:http's own connection listener, which serves the connection
// from then on exactly as if it had had it from the start.
import type * as net from 'node:net';
import type { ConnectionDriver, ConnectionStats, FileSender } from '@zcsend/core';
import { sendRange } from '../static/file-body.js';
import type { FastPlan, StaticServer } from '../static/handler.js';
import { INLINE_SENDFILE_MIN_BYTES } from '../static/resolver.js';
import { MAX_HEAD_BYTES, readRequestHead, type RequestHead } from './request-head.js';
import { laneIo, type LaneIo } from './transport.js';

/** One response of the fast path, for the access log and the counters. */
export interface FastResponse {
  socket: net.Socket;
  method: 'GET' | 'HEAD';
  target: string;
  minor: 0 | 1;
  status: number;
  /** Body bytes sent (Content-Length), null for HEAD and 304 (logged as "-", as node:http's are). */
  bodyBytes: number | null;
  /** Milliseconds the response took (0 unless the lane is `timed`). */
  ms: number;
  /** False when the connection ended before the body was all sent. */
  complete: boolean;
}

export interface FastLaneOptions {
  /** node:http's connection listener: takes a socket over from the fast path. */
  handOver: (socket: net.Socket) => void;
  /** node:http has the socket now, and the bytes the fast path had read from it. */
  handedOver: (socket: net.Socket) => void;
  statics: StaticServer;
  fileSender: FileSender;
  /**
   * Reads and writes connections through the ring where it can (null: libuv's stream for all).
   * Connections arrive paused either way (the server's pauseOnConnect).
   */
  driver: ConnectionDriver | null;
  /** Idle time allowed between requests on a keep-alive connection; 0 disables. */
  keepAliveTimeoutMs: number;
  /**
   * node:http's server.maxRequestsPerSocket (0: no limit), read per response: it may change.
   * Responses say `Keep-Alive: ..., max=N`; the Nth says Connection: close, and the connection
   * ends after it, as after every Connection: close response of the fast path.
   */
  maxRequestsPerSocket: () => number;
  /** Time allowed for a request head to arrive (also a new connection's first); 0 disables. Read when needed (node:http's server.headersTimeout may change). */
  headersTimeoutMs: () => number;
  /** Inactivity allowed while a body is being sent; 0 disables. */
  timeoutMs: number;
  /** While true, every response says Connection: close. */
  closing: () => boolean;
  /** Measure each response's duration (FastResponse.ms; 0 when false): the access log wants it. */
  timed: boolean;
  onRequest: () => void;
  onResponse: (response: FastResponse) => void;
  /** A connection timed out with a response in progress: judge it (keep, timer re-armed, or reset). */
  onStalled: (socket: net.Socket) => void;
  /**
   * A connection idle past its timeout: closed, or judged like a stalled one when the kernel still
   * holds its last body (a FIN would leave those buffers pinned in the orphaned socket).
   */
  onIdle: (socket: net.Socket) => void;
}

export interface FastLaneStats {
  /** Responses written by the fast path. */
  responses: number;
  /** Connections handed to node:http (at their first request the fast path did not take). */
  handovers: number;
  /** Bytes of whole responses cached for the current second (bounded by inlineCacheBytes, at least 1 MiB). */
  cachedResponseBytes: number;
  /** Connections read and written through the ring (core's ConnectionDriver), or null when libuv's stream serves them all. */
  ring: ConnectionStats | null;
}

/** What node:http answers when a head does not arrive in time (its requestTimeoutResponse). */
const REQUEST_TIMEOUT = Buffer.from('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n', 'latin1');
/** Unparsed bytes held while a response is in progress before reading pauses (pipelining flood). */
const MAX_BUFFERED = 4 * MAX_HEAD_BYTES;
/** The per-second response cache may always hold this much (head-only responses, tiny trees). */
const MIN_RESPONSE_CACHE_BYTES = 1024 * 1024;

/** node:http's own keep-alive lines (its OutgoingMessage), so responses do not differ by path. */
function keepAliveLines(keepAliveTimeoutMs: number, maxRequests: number): string {
  if (keepAliveTimeoutMs <= 0) return 'Connection: keep-alive\r\n';
  const max = maxRequests > 0 ? `, max=${maxRequests}` : '';
  return `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(keepAliveTimeoutMs / 1000)}${max}\r\n`;
}

export class FastLane {
  private readonly connections = new Map<net.Socket, FastConnection>();
  private readonly counts = { responses: 0, handovers: 0 };
  private keepAliveLines = '';
  /** The maxRequestsPerSocket that keepAliveLines (and the cached responses) were built for. */
  private linesMax = -1;
  private sweeper: NodeJS.Timeout | null = null;
  private dateSecond = -1;
  private dateLine = '';
  /** This second's keep-alive responses, by their plan's key (one per representation and status). */
  private readonly withBody = new Map<object, Buffer>();
  private readonly headOnly = new Map<object, Buffer>();
  private cachedBytes = 0;
  private readonly cacheLimit: number;

  constructor(readonly options: FastLaneOptions) {
    this.cacheLimit = Math.max(MIN_RESPONSE_CACHE_BYTES, options.statics.options.inlineCacheBytes);
  }

  /** @internal Requests a connection may make (0: no limit); a change rebuilds the keep-alive lines and drops the cached responses that carry them. */
  requestLimit(): number {
    const max = this.options.maxRequestsPerSocket();
    const limit = Number.isSafeInteger(max) && max > 0 ? max : 0;
    if (limit !== this.linesMax) {
      this.linesMax = limit;
      this.keepAliveLines = keepAliveLines(this.options.keepAliveTimeoutMs, limit);
      this.dateSecond = -1;
    }
    return limit;
  }

  /** Takes a new connection, accepted paused. */
  accept(socket: net.Socket): void {
    this.connections.set(socket, new FastConnection(this, socket));
    this.startSweeper();
  }

  /** Every connection is gone (shutdown): the ring's receive pool goes back to it. */
  close(): void {
    this.options.driver?.close();
  }

  owns(socket: net.Socket): boolean {
    return this.connections.has(socket);
  }

  stats(): FastLaneStats {
    return { ...this.counts, cachedResponseBytes: this.cachedBytes, ring: this.options.driver?.stats() ?? null };
  }

  /**
   * Shutdown: idle connections end now, busy ones after their response (which says Connection:
   * close); those being handed to node:http are node:http's to end (handedOver).
   */
  closeIdle(): void {
    for (const c of this.connections.values()) if (!c.busy && !c.handedOver) c.end();
  }

  /** @internal */
  forget(connection: FastConnection): void {
    this.connections.delete(connection.socket);
    if (this.connections.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  /** @internal */
  handOver(): void {
    this.counts.handovers++;
  }

  /** @internal */
  responded(): void {
    this.counts.responses++;
  }

  /**
   * @internal The whole response (head, and body when `withBody`) as one buffer: one write, no
   * string conversion per response. Keep-alive responses are reused for the rest of the second
   * (the Date header's resolution). The files served in one second can be many more than the
   * resolver keeps in memory (paths too long to cache are read anew, their bodies still inline),
   * so the cache stops growing at inlineCacheBytes; past it, responses are built per request.
   */
  response(plan: FastPlan, withBody: boolean, keepAlive: boolean): Buffer {
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.dateLine = `Date: ${new Date(second * 1000).toUTCString()}\r\n`;
      this.withBody.clear();
      this.headOnly.clear();
      this.cachedBytes = 0;
    }
    const body = withBody ? plan.body : null;
    if (!keepAlive) return this.build(plan.head, body, 'Connection: close\r\n');
    if (plan.key === null) return this.build(plan.head, body, this.keepAliveLines); // this request's own head (206)
    const cache = body !== null ? this.withBody : this.headOnly;
    let whole = cache.get(plan.key);
    if (whole === undefined) {
      whole = this.build(plan.head, body, this.keepAliveLines);
      if (this.cachedBytes + whole.length <= this.cacheLimit) {
        cache.set(plan.key, whole);
        this.cachedBytes += whole.length;
      }
    }
    return whole;
  }

  private build(head: string, body: Buffer | null, connection: string): Buffer {
    const text = head + this.dateLine + connection + '\r\n';
    const headBytes = Buffer.byteLength(text, 'latin1');
    const whole = Buffer.allocUnsafeSlow(headBytes + (body?.length ?? 0));
    whole.write(text, 0, 'latin1');
    if (body !== null) body.copy(whole, headBytes);
    return whole;
  }

  /**
   * One interval for every connection's idle and head timers: cheaper than a timer per socket,
   * refreshed per request. Precision is a quarter of the shortest timeout, at most 1 s.
   */
  private startSweeper(): void {
    if (this.sweeper) return;
    const keepAliveTimeoutMs = this.options.keepAliveTimeoutMs;
    const headersTimeoutMs = this.options.headersTimeoutMs();
    const shortest = Math.min(keepAliveTimeoutMs || Infinity, headersTimeoutMs || Infinity);
    if (shortest === Infinity) return;
    const every = Math.max(25, Math.min(1000, Math.floor(shortest / 4)));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  private sweep(): void {
    const now = performance.now();
    const keepAliveTimeoutMs = this.options.keepAliveTimeoutMs;
    const headersTimeoutMs = this.options.headersTimeoutMs();
    for (const c of this.connections.values()) {
      if (c.busy || c.handedOver) continue;
      if (c.headSince > 0) {
        if (headersTimeoutMs > 0 && now - c.headSince >= headersTimeoutMs) c.timeOutHead();
        continue;
      }
      // A connection that never sent a request gets the head timeout, as under node:http.
      const limit = c.served > 0 ? keepAliveTimeoutMs : headersTimeoutMs;
      if (limit <= 0 || now - c.lastActive < limit) continue;
      c.lastActive = now; // judged again one period later if kept
      this.options.onIdle(c.socket);
    }
  }
}

class FastConnection {
  /** Bytes received and not yet parsed. */
  buffer: Buffer | null = null;
  /** A response is in progress (waiting for its file entry, its body, or a full socket to drain). */
  busy = false;
  served = 0;
  /** performance.now() of the last bytes received, or of the end of the last response. */
  lastActive = performance.now();
  /** When the unfinished head in `buffer` started arriving (ms), 0 when there is none. */
  headSince = 0;
  private peerEnded = false;
  /** The last response said Connection: close: nothing more is read. */
  private last = false;
  /** Going to node:http: still the lane's (owns()) until the transport has let go of the socket. */
  handedOver = false;
  private paused = false;
  private readonly io: LaneIo;

  private readonly onClose = () => this.lane.forget(this);
  private readonly onTimeout = () => {
    // A hand-over waits for the ring's writes: as long as a response in progress, and judged alike.
    if (this.busy || this.handedOver) this.lane.options.onStalled(this.socket);
    else this.socket.destroy();
  };
  private readonly onError = () => {
    // 'close' follows; the response in progress learns of it from its send.
  };

  constructor(
    private readonly lane: FastLane,
    readonly socket: net.Socket,
  ) {
    socket.on('error', this.onError);
    socket.on('timeout', this.onTimeout);
    socket.once('close', this.onClose);
    this.io = laneIo(socket, lane.options.driver, {
      data: (chunk) => this.data(chunk),
      end: () => {
        this.peerEnded = true;
        if (!this.busy && !this.handedOver) this.drain();
      },
    });
  }

  end(): void {
    this.last = true;
    this.buffer = null;
    if (!this.socket.destroyed) this.io.end();
  }

  timeOutHead(): void {
    this.buffer = null;
    this.headSince = 0;
    if (!this.socket.writable) return void this.socket.destroy();
    this.io.write(REQUEST_TIMEOUT);
    this.io.whenWritten(() => this.socket.destroy());
  }

  private data(chunk: Buffer): void {
    const now = performance.now();
    this.lastActive = now;
    if (this.handedOver) {
      // Still arriving while the ring lets go of the socket: node:http gets these too.
      this.buffer = this.buffer === null ? Buffer.from(chunk) : Buffer.concat([this.buffer, chunk]);
      return;
    }
    if (this.last) return; // after a Connection: close response, as node:http does
    this.buffer = this.buffer === null ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.busy) {
      if (this.buffer.length > MAX_BUFFERED && !this.paused) {
        this.paused = true;
        this.io.pause();
      }
    } else {
      this.drain(now);
    }
    // What is left unparsed outlives the chunk's memory when that is a reused receive buffer.
    if (this.io.transientChunks && this.buffer !== null && this.buffer.buffer === chunk.buffer) this.buffer = Buffer.from(this.buffer);
  }

  /** Answers every complete request in the buffer, in order, until one takes time. `now`: performance.now(), read once per wake-up. */
  private drain(now = performance.now()): void {
    while (!this.busy && !this.handedOver && this.buffer !== null && !this.last) {
      if (this.socket.destroyed) return;
      const head = readRequestHead(this.buffer, 0, this.buffer.length);
      if (head === 'incomplete') {
        if (this.headSince === 0) this.headSince = this.lastActive;
        break;
      }
      if (head === 'decline') return this.handOver();
      this.headSince = 0;
      const plan = this.lane.options.statics.fastPlan(head, now);
      if (plan === null) return this.handOver();
      if (plan instanceof Promise) {
        this.busy = true;
        if (this.io.transientChunks) this.buffer = Buffer.from(this.buffer); // kept across the wait
        plan.then(
          (resolved) => this.planned(head, resolved),
          () => this.planned(head, null),
        );
        return;
      }
      this.consume(head.end);
      this.respond(head, plan);
    }
    if (this.paused && !this.busy && !this.handedOver) {
      this.paused = false;
      this.io.resume();
    }
    if (this.busy || this.handedOver) return;
    // Idle from here: the keep-alive timer starts now, not at the request (a long body must not eat it).
    this.lastActive = now;
    // The peer sent its last request and every answer is written, or the server is closing and
    // nothing is left to answer: close our side too.
    const done = this.buffer === null || this.last;
    if (done && (this.peerEnded || this.lane.options.closing())) this.end();
    // The peer ended in the middle of a head: node:http answers that (400), as without the fast path.
    else if (this.peerEnded && !done) this.handOver();
  }

  private planned(head: RequestHead, plan: FastPlan | null): void {
    this.busy = false;
    if (this.socket.destroyed) return;
    if (plan === null) return this.handOver();
    this.consume(head.end);
    this.respond(head, plan);
    this.drain();
  }

  private consume(bytes: number): void {
    const buffer = this.buffer!;
    this.buffer = bytes < buffer.length ? buffer.subarray(bytes) : null;
  }

  /** `again`: the same request answered anew after its file changed (counted once, not twice). */
  private respond(head: RequestHead, plan: FastPlan, again = false): void {
    const { lane, socket } = this;
    const timed = lane.options.timed;
    const started = timed ? performance.now() : 0;
    const limit = lane.requestLimit();
    if (!again) {
      this.served++;
      lane.responded();
      lane.options.onRequest();
    }
    const keepAlive = head.keepAlive && !lane.options.closing() && (limit === 0 || this.served < limit);
    if (!keepAlive) this.last = true;
    const bodyBytes = head.method === 'HEAD' || plan.status === 304 ? null : plan.end - plan.start;
    const report = (complete: boolean) =>
      lane.options.onResponse({ socket, method: head.method, target: head.target, minor: head.minor, status: plan.status, bodyBytes, ms: timed ? performance.now() - started : 0, complete });

    if (plan.file === null) {
      const flushed = this.writeWhole(plan, keepAlive);
      if (plan.body !== null) lane.options.statics.noteFastBody('inline');
      report(true);
      if (this.last) return void this.io.end();
      if (!flushed) this.waitForDrain();
      return;
    }

    const rep = plan.file;
    this.busy = true;
    this.armTimeout();
    // The head goes with the body's first bytes (one step, shared segments, where sendfile runs).
    const responseHead = lane.response(plan, false, keepAlive);
    const send = () =>
      sendRange(lane.options.fileSender, socket, { path: rep.fsPath, stat: rep.stat }, { start: plan.start, end: plan.end }, responseHead).then(
        () => {
          lane.options.statics.noteFastBody('fileSender');
          this.bodyDone(true, report);
        },
        (error: unknown) => {
          // Replaced or rewritten since its stat, and nothing of this response went out: answer
          // again from a fresh lookup (once), as if the request had come a moment later.
          const changed = lane.options.statics.bodyFailed(rep, error);
          if (changed && !again && !socket.destroyed) return this.answerAgain(head, aborted);
          aborted();
        },
      );
    const aborted = () => {
      lane.options.statics.noteFastBody('aborted');
      // Content-Length promised bytes that will not all come: the connection cannot go on.
      if (!socket.destroyed) socket.destroy();
      this.bodyDone(false, report);
    };
    // Earlier responses still queued on the ring go first: the FileSender writes to the socket itself.
    if (this.io.writableLength === 0) send();
    else this.io.whenWritten(send);
  }

  /**
   * A response with its body from memory (or none). A large enough body goes by sendfile from the
   * file held open for it, after its head (send with MSG_MORE): no copy of the body. Whatever the
   * socket does not take at once, and every other response, is one write.
   */
  private writeWhole(plan: FastPlan, keepAlive: boolean): boolean {
    const { lane, socket, io } = this;
    const body = plan.body;
    // Synchronous sends only with nothing of ours still queued ahead of them.
    if (body !== null && body.length >= INLINE_SENDFILE_MIN_BYTES && io.writableLength === 0 && lane.options.fileSender.canSendHeadAndFileNow) {
      const fd = lane.options.statics.inlineFileFd(plan.rep);
      if (fd >= 0) {
        const head = lane.response(plan, false, keepAlive);
        const sent = lane.options.fileSender.sendHeadAndFileNow(socket, head, fd, plan.start, plan.start + body.length);
        if (sent !== null && sent.head === head.length) return sent.body === body.length || io.write(body.subarray(sent.body));
        if (sent !== null && sent.head > 0) return io.write(Buffer.concat([head.subarray(sent.head), body]));
      }
    }
    return io.write(lane.response(plan, true, keepAlive));
  }

  /** The request's file changed under its response before a byte was sent: plan it again. */
  private answerAgain(head: RequestHead, aborted: () => void): void {
    const again = (plan: FastPlan | null) => {
      // Declined now (gone, a directory, an error status): node:http cannot have the request, its
      // bytes are consumed, so the connection ends as for any failed body.
      if (plan === null || this.socket.destroyed) return aborted();
      this.busy = false;
      this.disarmTimeout();
      this.respond(head, plan, true);
      this.drain();
    };
    const plan = this.lane.options.statics.fastPlan(head, performance.now());
    if (plan instanceof Promise) plan.then(again, () => again(null));
    else again(plan);
  }

  private bodyDone(ok: boolean, report: (complete: boolean) => void): void {
    this.busy = false;
    this.disarmTimeout();
    report(ok);
    if (!ok) return;
    if (this.last) return void this.io.end();
    this.drain();
  }

  /** A peer that does not read: stop answering its pipelined requests until the socket drains. */
  private waitForDrain(): void {
    this.busy = true;
    this.armTimeout();
    this.io.whenWritten(() => {
      this.busy = false;
      this.disarmTimeout();
      if (!this.socket.destroyed) this.drain();
    });
  }

  private armTimeout(): void {
    const ms = this.lane.options.timeoutMs;
    if (ms > 0) this.socket.setTimeout(ms);
  }

  private disarmTimeout(): void {
    if (this.lane.options.timeoutMs > 0) this.socket.setTimeout(0);
  }

  /**
   * node:http takes the connection from here on: the request at the start of the buffer is the
   * first it parses. Once the transport has let go (the ring: its receive ended and its writes are
   * out), node:http's listener wires its parser to the socket (consuming the handle) and the bytes
   * already read are given to it as a 'data' event, before any later read can arrive. Until then
   * the connection stays the lane's: a shutdown must not end the socket under the ring's writes,
   * and a peer that never takes them is timed out like one stalling a response.
   */
  private handOver(): void {
    const { socket } = this;
    this.handedOver = true;
    this.lane.handOver();
    this.armTimeout();
    this.io.release(() => {
      const rest = this.buffer;
      this.buffer = null;
      this.lane.forget(this);
      socket.off('error', this.onError);
      socket.off('timeout', this.onTimeout);
      socket.off('close', this.onClose);
      socket.setTimeout(0); // node:http sets its own
      if (socket.destroyed) return;
      this.lane.options.handOver(socket);
      // Reading through libuv starts now (the ring's connections were never read by libuv).
      if (this.paused || this.io.transientChunks) socket.resume();
      if (rest !== null) socket.emit('data', rest);
      // libuv already read the FIN; on the ring it is still in the socket for libuv to find.
      if (this.peerEnded && !this.io.transientChunks) socket.emit('end');
      this.lane.options.handedOver(socket);
    });
  }
}
