// What a fuzzed exchange must satisfy: valid HTTP/1.x responses or a close, no 5xx from
// unexpected failures, and every 2xx body made of bytes of a file inside the root.
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { OUTSIDE_MARKER, type FixtureTree } from '../lib/fixtures.js';
import { ResponseReader, type ResponseHead } from '../lib/http-response.js';
import type { FuzzCase } from './generate.js';

export interface ExchangeResult {
  responses: Array<{ head: ResponseHead; body: Buffer }>;
  received: number;
  /** The server closed the connection (rather than us, after it fell silent). */
  closed: boolean;
  /** A response was cut short by the close, or the bytes were not HTTP. */
  error: string | null;
}

/** Content the server may legitimately send in a 2xx body: the files inside the root. */
export class ServedContent {
  private readonly hashes = new Set<string>();
  private readonly bySize = new Map<number, Buffer[]>();

  constructor(tree: FixtureTree) {
    for (const f of tree.files) {
      this.hashes.add(sha256(f.data));
      const list = this.bySize.get(f.data.length) ?? [];
      list.push(f.data);
      this.bySize.set(f.data.length, list);
    }
  }

  isWholeFile(body: Buffer): boolean {
    return this.hashes.has(sha256(body));
  }

  /** Whether `body` is bytes [start, end] of some served file of `size` bytes. */
  isSlice(body: Buffer, start: number, end: number, size: number): boolean {
    if (end - start + 1 !== body.length) return false;
    return (this.bySize.get(size) ?? []).some((data) => data.subarray(start, end + 1).equals(body));
  }
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * Sends the case on a fresh connection and reads until the server closes, or every request got
 * its answer, or the server falls silent between responses for `idleMs` (it may be waiting for
 * the rest of a request). Silence inside a response for `deadlineMs` is a failure.
 */
export function exchange(port: number, fuzzCase: FuzzCase, deadlineMs: number, idleMs = 300): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    const responses: ExchangeResult['responses'] = [];
    let body: Buffer[] = [];
    const reader = new ResponseReader(
      {
        onHead: () => (body = []),
        onBody: (chunk) => body.push(Buffer.from(chunk)),
        onComplete: (head) => responses.push({ head, body: Buffer.concat(body) }),
      },
      (i) => fuzzCase.heads[i] ?? false,
    );
    const socket = net.connect({ port, host: '127.0.0.1' });
    let error: string | null = null;
    let done = false;
    let idleTimer: NodeJS.Timeout | null = null;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      if (idleTimer) clearTimeout(idleTimer);
      if (closed && !error) {
        try {
          reader.end();
        } catch (err) {
          error = (err as Error).message;
        }
      }
      socket.destroy();
      resolve({ responses, received: reader.received, closed, error });
    };
    const deadline = setTimeout(() => {
      if (reader.midResponse) error = `a response stalled: ${reader.received} bytes, ${responses.length} complete responses in ${deadlineMs} ms`;
      finish(false);
    }, deadlineMs);
    const armIdle = () => {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        if (!reader.midResponse) finish(false);
      }, idleMs);
    };
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      if (reader.error && !error) {
        error = reader.error.message;
        return finish(false);
      }
      if (fuzzCase.heads.length > 0 && responses.length >= fuzzCase.heads.length && !reader.midResponse) return finish(false);
      armIdle();
    });
    // A reset after (or instead of) the answer is a close; what came before it is still judged.
    socket.on('error', () => {});
    socket.once('close', () => finish(true));
    socket.once('connect', () => {
      socket.write(fuzzCase.bytes);
      if (fuzzCase.halfClose) socket.end();
      armIdle();
    });
  });
}

/** The close cut a response short (as opposed to bytes that are not HTTP). */
export function isTruncation(error: string): boolean {
  return error.startsWith('connection closed inside');
}

const ETC_MARKERS = ['root:x:0:0', 'root:*:', '/bin/bash', '/usr/sbin/nologin'];

/** Problems with one exchange; empty when it is acceptable. */
export function judge(result: ExchangeResult, served: ServedContent, tree: FixtureTree, cutByNode = false): string[] {
  const problems: string[] = [];
  if (result.error && !(cutByNode && isTruncation(result.error))) problems.push(`invalid HTTP or a response cut short: ${result.error}`);
  for (const { head, body } of result.responses) {
    const text = body.toString('latin1');
    if (text.includes(OUTSIDE_MARKER)) problems.push(`${head.status} body holds the outside-root marker`);
    for (const m of ETC_MARKERS) if (text.includes(m)) problems.push(`${head.status} body looks like a system file (${m})`);
    if (text.includes(tree.dir)) problems.push(`${head.status} body reveals the server's directory`);
    const headerText = head.rawHeaders.map(([k, v]) => `${k}: ${v}`).join('\n');
    if (headerText.includes(OUTSIDE_MARKER) || headerText.includes(tree.dir)) problems.push(`${head.status} headers leak the outside marker or directory`);
    if (head.status >= 500 && head.status !== 501 && head.status !== 505) problems.push(`status ${head.status}`);
    if (head.status === 200 && body.length > 0 && !served.isWholeFile(body)) problems.push(`200 body (${body.length} bytes) is not a file inside the root`);
    if (head.status === 206) problems.push(...check206(head, body, served));
  }
  return problems;
}

function check206(head: ResponseHead, body: Buffer, served: ServedContent): string[] {
  const type = head.headers['content-type'] ?? '';
  const boundary = /^multipart\/byteranges;\s*boundary=("?)([^";]+)\1/i.exec(type)?.[2];
  if (!boundary) {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(head.headers['content-range'] ?? '');
    if (!m) return [`206 without a valid Content-Range (${head.headers['content-range']})`];
    if (body.length === 0) return []; // HEAD
    return served.isSlice(body, Number(m[1]), Number(m[2]), Number(m[3])) ? [] : [`206 body is not bytes ${m[1]}-${m[2]} of a ${m[3]}-byte file inside the root`];
  }
  if (body.length === 0) return [];
  // multipart/byteranges: every part must be the slice its own Content-Range names.
  const problems: string[] = [];
  const delimiter = Buffer.from(`--${boundary}`);
  let at = body.indexOf(delimiter);
  let parts = 0;
  while (at >= 0) {
    const afterDelimiter = at + delimiter.length;
    if (body.subarray(afterDelimiter, afterDelimiter + 2).toString() === '--') break;
    const headEnd = body.indexOf('\r\n\r\n', afterDelimiter);
    if (headEnd < 0) return [...problems, 'multipart part without a header block'];
    const partHead = body.subarray(afterDelimiter, headEnd).toString('latin1');
    const m = /content-range:\s*bytes (\d+)-(\d+)\/(\d+)/i.exec(partHead);
    if (!m) return [...problems, 'multipart part without Content-Range'];
    const start = Number(m[1]);
    const end = Number(m[2]);
    const dataStart = headEnd + 4;
    const data = body.subarray(dataStart, dataStart + (end - start + 1));
    if (!served.isSlice(data, start, end, Number(m[3]))) problems.push(`multipart part ${start}-${end} is not a slice of a file inside the root`);
    parts++;
    at = body.indexOf(delimiter, dataStart + data.length);
  }
  if (parts === 0) problems.push('multipart/byteranges without parts');
  return problems;
}

