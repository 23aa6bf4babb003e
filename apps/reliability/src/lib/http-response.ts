// A strict, incremental HTTP/1.x response reader. It streams body bytes to the caller (the soak
// compares 64 MiB bodies without buffering them) and refuses anything RFC 9112 does not allow:
// bad status lines, bad header syntax, conflicting framing, a body cut short by the close.

export interface ResponseHead {
  version: string;
  status: number;
  reason: string;
  /** Lower-cased names; repeated fields joined with ', ' (set-cookie kept as the last value). */
  headers: Record<string, string>;
  /** Raw header lines in order, for checks that care about repetition. */
  rawHeaders: Array<[string, string]>;
  /** Bytes of the status line and header block, CRLFs included. */
  headBytes: number;
}

export interface ResponseEvents {
  /** A final (non-1xx) response head. Interim 1xx heads go to onInterim. */
  onHead?(head: ResponseHead): void;
  onInterim?(head: ResponseHead): void;
  onBody?(chunk: Buffer, head: ResponseHead): void;
  /** The response is complete; `bodyBytes` is its body length. */
  onComplete?(head: ResponseHead, bodyBytes: number): void;
}

export class HttpSyntaxError extends Error {
  override name = 'HttpSyntaxError';
}

const STATUS_LINE = /^HTTP\/(1\.[01]) ([1-9]\d{2}) ([\t \x21-\x7e\x80-\xff]*)$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// field-value: VCHAR, obs-text, SP, HTAB; no CR, LF or NUL.
const FIELD_VALUE = /^[\t \x21-\x7e\x80-\xff]*$/;
const MAX_HEAD = 64 * 1024;

type Framing = { kind: 'length'; remaining: number } | { kind: 'chunked' } | { kind: 'close' } | { kind: 'none' };

type ChunkState =
  | { step: 'size' }
  | { step: 'data'; remaining: number }
  | { step: 'data-crlf' }
  | { step: 'trailers' };

/**
 * Feed it what the socket delivers (`push`) and tell it when the connection closed (`end`).
 * `isHead(i)` says whether the i-th response answers a HEAD request (no body whatever the headers say).
 */
export class ResponseReader {
  private buf: Buffer = Buffer.alloc(0);
  private head: ResponseHead | null = null;
  private framing: Framing | null = null;
  private chunk: ChunkState = { step: 'size' };
  private bodyBytes = 0;
  /** Final responses completed so far. */
  completed = 0;
  /** Bytes received in total. */
  received = 0;
  private failed: HttpSyntaxError | null = null;

  constructor(
    private readonly events: ResponseEvents = {},
    private readonly isHead: (index: number) => boolean = () => false,
  ) {}

  /** True while a response has started (head or body bytes) but not completed. */
  get midResponse(): boolean {
    return this.head !== null || this.buf.length > 0;
  }

  get error(): HttpSyntaxError | null {
    return this.failed;
  }

  push(chunk: Buffer): void {
    if (this.failed) return;
    this.received += chunk.length;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    try {
      this.drain();
    } catch (err) {
      if (!(err instanceof HttpSyntaxError)) throw err;
      this.failed = err;
    }
  }

  /** The connection closed. Throws HttpSyntaxError when that cut a response short. */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.head && this.framing?.kind === 'close') {
      this.finish();
      return;
    }
    if (this.head) throw new HttpSyntaxError(`connection closed inside a ${this.head.status} response after ${this.bodyBytes} body bytes`);
    if (this.buf.length > 0) throw new HttpSyntaxError(`connection closed inside a response head (${this.buf.length} bytes)`);
  }

  private drain(): void {
    for (;;) {
      if (!this.head) {
        if (!this.readHead()) return;
        continue;
      }
      if (!this.readBody()) return;
    }
  }

  private readHead(): boolean {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.buf.length > MAX_HEAD) throw new HttpSyntaxError(`response head longer than ${MAX_HEAD} bytes`);
      // A bare LF line ending would never match: refuse it early instead of waiting for a close.
      if (this.buf.includes('\n') && !this.buf.subarray(0, this.buf.indexOf('\n') + 1).toString('latin1').endsWith('\r\n')) {
        throw new HttpSyntaxError('status line not terminated by CRLF');
      }
      return false;
    }
    const text = this.buf.subarray(0, end).toString('latin1');
    const lines = text.split('\r\n');
    const statusLine = lines[0]!;
    const m = STATUS_LINE.exec(statusLine);
    if (!m) throw new HttpSyntaxError(`bad status line: ${JSON.stringify(statusLine.slice(0, 120))}`);
    const headers: Record<string, string> = {};
    const rawHeaders: Array<[string, string]> = [];
    for (const line of lines.slice(1)) {
      if (line.includes('\n') || line.includes('\r')) throw new HttpSyntaxError(`bare CR or LF in header line ${JSON.stringify(line.slice(0, 80))}`);
      const colon = line.indexOf(':');
      if (colon <= 0) throw new HttpSyntaxError(`bad header line: ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
      if (!TOKEN.test(name)) throw new HttpSyntaxError(`bad header name: ${JSON.stringify(name.slice(0, 80))}`);
      if (!FIELD_VALUE.test(value)) throw new HttpSyntaxError(`bad value for header ${name}`);
      const key = name.toLowerCase();
      rawHeaders.push([key, value]);
      headers[key] = key in headers && key !== 'set-cookie' ? `${headers[key]}, ${value}` : value;
    }
    const head: ResponseHead = { version: m[1]!, status: Number(m[2]), reason: m[3]!, headers, rawHeaders, headBytes: end + 4 };
    this.buf = this.buf.subarray(end + 4);
    if (head.status < 200) {
      if (head.status === 101) throw new HttpSyntaxError('unexpected 101 Switching Protocols');
      this.events.onInterim?.(head);
      return true;
    }
    this.head = head;
    this.framing = this.framingOf(head);
    this.chunk = { step: 'size' };
    this.bodyBytes = 0;
    this.events.onHead?.(head);
    if (this.framing.kind === 'none' || (this.framing.kind === 'length' && this.framing.remaining === 0)) this.finish();
    return true;
  }

  private framingOf(head: ResponseHead): Framing {
    const te = head.rawHeaders.filter(([k]) => k === 'transfer-encoding').map(([, v]) => v.toLowerCase());
    const lengths = head.rawHeaders.filter(([k]) => k === 'content-length').flatMap(([, v]) => v.split(',').map((s) => s.trim()));
    if (te.length > 0 && lengths.length > 0) throw new HttpSyntaxError('both Transfer-Encoding and Content-Length');
    for (const l of lengths) if (!/^\d{1,15}$/.test(l)) throw new HttpSyntaxError(`bad Content-Length ${JSON.stringify(l)}`);
    if (new Set(lengths).size > 1) throw new HttpSyntaxError(`conflicting Content-Length values ${lengths.join(', ')}`);
    const bodyless = this.isHead(this.completed) || head.status === 204 || head.status === 304;
    if (head.status === 204 && (lengths.length > 0 || te.length > 0)) throw new HttpSyntaxError('204 with body framing headers');
    if (bodyless) return { kind: 'none' };
    if (te.length > 0) {
      const codings = te.join(',').split(',').map((s) => s.trim());
      if (codings.at(-1) !== 'chunked') throw new HttpSyntaxError(`Transfer-Encoding without final chunked: ${te.join(',')}`);
      return { kind: 'chunked' };
    }
    if (lengths.length > 0) return { kind: 'length', remaining: Number(lengths[0]) };
    return { kind: 'close' };
  }

  private readBody(): boolean {
    const head = this.head!;
    const framing = this.framing!;
    if (framing.kind === 'close') {
      if (this.buf.length === 0) return false;
      this.emitBody(this.buf, head);
      this.buf = Buffer.alloc(0);
      return false;
    }
    if (framing.kind === 'length') {
      if (this.buf.length === 0) return false;
      const take = Math.min(framing.remaining, this.buf.length);
      this.emitBody(this.buf.subarray(0, take), head);
      this.buf = this.buf.subarray(take);
      framing.remaining -= take;
      if (framing.remaining === 0) this.finish();
      return framing.remaining === 0;
    }
    if (framing.kind === 'chunked') return this.readChunked(head);
    return false;
  }

  private readChunked(head: ResponseHead): boolean {
    for (;;) {
      const state = this.chunk;
      if (state.step === 'size') {
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) {
          if (this.buf.length > 1024) throw new HttpSyntaxError('chunk size line too long');
          return false;
        }
        const line = this.buf.subarray(0, eol).toString('latin1');
        const sizeText = line.split(';')[0]!.trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) throw new HttpSyntaxError(`bad chunk size ${JSON.stringify(line.slice(0, 40))}`);
        const size = parseInt(sizeText, 16);
        this.buf = this.buf.subarray(eol + 2);
        this.chunk = size === 0 ? { step: 'trailers' } : { step: 'data', remaining: size };
      } else if (state.step === 'data') {
        if (this.buf.length === 0) return false;
        const take = Math.min(state.remaining, this.buf.length);
        this.emitBody(this.buf.subarray(0, take), head);
        this.buf = this.buf.subarray(take);
        state.remaining -= take;
        if (state.remaining === 0) this.chunk = { step: 'data-crlf' };
      } else if (state.step === 'data-crlf') {
        if (this.buf.length < 2) return false;
        if (this.buf[0] !== 13 || this.buf[1] !== 10) throw new HttpSyntaxError('chunk data not followed by CRLF');
        this.buf = this.buf.subarray(2);
        this.chunk = { step: 'size' };
      } else {
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) return false;
        const line = this.buf.subarray(0, eol).toString('latin1');
        this.buf = this.buf.subarray(eol + 2);
        if (line === '') {
          this.finish();
          return true;
        }
        const colon = line.indexOf(':');
        if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) throw new HttpSyntaxError(`bad trailer line ${JSON.stringify(line.slice(0, 80))}`);
      }
    }
  }

  private emitBody(chunk: Buffer, head: ResponseHead): void {
    this.bodyBytes += chunk.length;
    this.events.onBody?.(chunk, head);
  }

  private finish(): void {
    const head = this.head!;
    const bodyBytes = this.bodyBytes;
    this.head = null;
    this.framing = null;
    this.bodyBytes = 0;
    this.completed++;
    this.events.onComplete?.(head, bodyBytes);
  }
}
