// Access log: one line per request in Common Log Format plus the duration, buffered so logging
// costs one write per batch rather than one per request.
import type * as http from 'node:http';

export type LogSink = (chunk: string) => void;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const FLUSH_BYTES = 16 * 1024;
const FLUSH_MS = 100;

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Log lines must stay one line each whatever the client sent: control bytes, quotes and backslashes escaped. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u00ff"\\]/g;
function escape(text: string): string {
  return text.replace(UNSAFE, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export interface LogEntry {
  remote: string | undefined;
  method: string;
  url: string;
  httpVersion: string;
  status: number;
  bodyBytes: number | null;
  ms: number;
  complete: boolean;
}

export class AccessLog {
  private buffer = '';
  private timer: NodeJS.Timeout | null = null;
  private dateSecond = -1;
  private dateText = '';

  constructor(private readonly sink: LogSink) {}

  /** Logs `req` once its response finished or its connection closed. */
  watch(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    res.once('close', () => this.line(req, res, performance.now() - started));
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.buffer.length === 0) return;
    const chunk = this.buffer;
    this.buffer = '';
    this.sink(chunk);
  }

  private line(req: http.IncomingMessage, res: http.ServerResponse, ms: number): void {
    // Headers given to writeHead as a list are not readable through getHeader(); Node keeps the length here.
    const length = (res as { _contentLength?: number | null })._contentLength ?? res.getHeader('content-length');
    const complete = res.writableFinished;
    this.record({
      remote: req.socket?.remoteAddress,
      method: req.method ?? '-',
      url: req.url ?? '-',
      httpVersion: req.httpVersion,
      status: complete || res.headersSent ? res.statusCode : 0,
      bodyBytes: req.method !== 'HEAD' && length != null ? Number(length) : null,
      ms,
      complete,
    });
  }

  /** Logs one finished (or cut short) response; `bodyBytes` null prints '-'. */
  record(entry: LogEntry): void {
    const bytes = entry.complete && entry.bodyBytes !== null ? String(entry.bodyBytes) : '-';
    this.buffer +=
      `${entry.remote ?? '-'} - - [${this.clfDate()}] "${escape(entry.method)} ${escape(entry.url)} HTTP/${entry.httpVersion}" ` +
      `${entry.status} ${bytes} ${entry.ms.toFixed(3)}ms${entry.complete ? '' : ' aborted'}\n`;
    if (this.buffer.length >= FLUSH_BYTES) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  private clfDate(): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.dateSecond) {
      const d = new Date(second * 1000);
      this.dateSecond = second;
      this.dateText = `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
    }
    return this.dateText;
  }
}
