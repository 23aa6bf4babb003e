// One keep-alive client connection of the soak: sends a request, checks the response as it
// streams in (status, framing, every byte against the file), and misbehaves when told to.
import * as net from 'node:net';
import { ResponseReader, type ResponseHead } from '../lib/http-response.js';
import type { PlannedRequest } from './plan.js';

export type Outcome =
  | { kind: 'complete'; status: number; bodyBytes: number }
  | { kind: 'aborted'; bodyBytes: number }
  | { kind: 'stalled'; connection: Connection }
  /** Server closed (or reset) the connection before the response completed. */
  | { kind: 'closed'; bodyBytes: number; responseStarted: boolean; error: string | null }
  | { kind: 'bad'; reason: string };

interface Pending {
  plan: PlannedRequest;
  expected: Buffer;
  resolve: (o: Outcome) => void;
  bodyBytes: number;
  head: ResponseHead | null;
  done: boolean;
}

export class Connection {
  readonly socket: net.Socket;
  private readonly reader: ResponseReader;
  private pending: Pending | null = null;
  private closedError: string | null = null;
  closed = false;
  /** Requests sent on this connection (a reused connection may be closed by the server when idle). */
  used = 0;
  /** Body bytes that reached this client. */
  bytesReceived = 0;

  private constructor(port: number, readonly onClose: (c: Connection) => void) {
    this.socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    this.reader = new ResponseReader({
      onHead: (head) => this.onHead(head),
      onBody: (chunk) => this.onBody(chunk),
      onComplete: (head, bodyBytes) => this.onComplete(head, bodyBytes),
    });
    this.socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      if (this.reader.error) this.fail(`invalid HTTP: ${this.reader.error.message}`);
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => (this.closedError = err.code ?? err.message));
    this.socket.once('close', () => {
      this.closed = true;
      const p = this.pending;
      if (p && !p.done) {
        p.done = true;
        this.pending = null;
        p.resolve({ kind: 'closed', bodyBytes: p.bodyBytes, responseStarted: p.head !== null || this.reader.midResponse, error: this.closedError });
      }
      onClose(this);
    });
  }

  static open(port: number, onClose: (c: Connection) => void = () => {}): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const c = new Connection(port, onClose);
      c.socket.once('connect', () => resolve(c));
      c.socket.once('error', reject);
    });
  }

  /** Sends the planned request; resolves when the response is checked, or the client went away as planned. */
  request(plan: PlannedRequest, expected: Buffer): Promise<Outcome> {
    if (this.pending) throw new Error('one request at a time per connection');
    this.used++;
    return new Promise((resolve) => {
      const p: Pending = { plan, expected, resolve, bodyBytes: 0, head: null, done: false };
      this.pending = p;
      const range = plan.range ? `Range: bytes=${plan.range[0]}-${plan.range[1] - 1}\r\n` : '';
      this.socket.write(`GET ${plan.target} HTTP/1.1\r\nHost: soak\r\nUser-Agent: zcsend-soak\r\n${range}\r\n`);
      if (plan.behaviour === 'abort-after-request') {
        this.goAway(plan.reset);
        this.settle({ kind: 'aborted', bodyBytes: 0 });
      } else if (plan.behaviour === 'stall') {
        // Read nothing: once Node's 16 KiB read buffer fills it stops reading, the kernel's
        // receive window closes, and the server's sends stall until its timeout cuts them off.
        this.socket.pause();
        this.settle({ kind: 'stalled', connection: this });
      }
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private goAway(reset: boolean): void {
    if (reset) this.socket.resetAndDestroy();
    else this.socket.destroy();
  }

  private settle(outcome: Outcome): void {
    const p = this.pending;
    if (!p || p.done) return;
    p.done = true;
    if (outcome.kind !== 'stalled') this.pending = null;
    p.resolve(outcome);
  }

  private fail(reason: string): void {
    this.settle({ kind: 'bad', reason });
    this.socket.destroy();
  }

  private expectedSlice(p: Pending): Buffer {
    return p.plan.range ? p.expected.subarray(p.plan.range[0], p.plan.range[1]) : p.expected;
  }

  private onHead(head: ResponseHead): void {
    const p = this.pending;
    if (!p || p.done) return;
    p.head = head;
    const want = this.expectedSlice(p);
    const status = p.plan.range ? 206 : 200;
    if (head.status !== status) return this.fail(`${p.plan.target}: status ${head.status}, expected ${status}`);
    if (Number(head.headers['content-length']) !== want.length) {
      return this.fail(`${p.plan.target}: content-length ${head.headers['content-length']}, expected ${want.length}`);
    }
    if (p.plan.range) {
      const cr = `bytes ${p.plan.range[0]}-${p.plan.range[1] - 1}/${p.expected.length}`;
      if (head.headers['content-range'] !== cr) return this.fail(`${p.plan.target}: content-range ${head.headers['content-range']}, expected ${cr}`);
    }
  }

  private onBody(chunk: Buffer): void {
    const p = this.pending;
    if (!p || p.done) return;
    const want = this.expectedSlice(p);
    const at = p.bodyBytes;
    if (!chunk.equals(want.subarray(at, at + chunk.length))) {
      let i = 0;
      while (i < chunk.length && chunk[i] === want[at + i]) i++;
      return this.fail(`${p.plan.target}: body differs at byte ${at + i} of ${want.length}`);
    }
    p.bodyBytes += chunk.length;
    this.bytesReceived += chunk.length;
    if (p.plan.behaviour === 'abort-mid-body' && p.bodyBytes >= p.plan.abortAfter && p.bodyBytes < want.length) {
      this.goAway(p.plan.reset);
      this.settle({ kind: 'aborted', bodyBytes: p.bodyBytes });
    }
  }

  private onComplete(head: ResponseHead, bodyBytes: number): void {
    const p = this.pending;
    if (!p || p.done) return;
    if (p.plan.behaviour === 'abort-mid-body') {
      // The whole body arrived in one read: leave anyway, after a complete (and checked) response.
      this.goAway(p.plan.reset);
    } else if (head.headers.connection?.toLowerCase() === 'close') {
      this.socket.end();
    }
    this.settle({ kind: 'complete', status: head.status, bodyBytes });
  }
}
