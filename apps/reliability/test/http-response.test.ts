// The response reader is the oracle of the soak and the fuzzer: it must refuse what is not HTTP.
import { describe, expect, it } from 'vitest';
import { ResponseReader, type ResponseHead } from '../src/lib/http-response.js';

function read(text: string | Buffer, heads: boolean[] = [], split = 0) {
  const done: Array<{ head: ResponseHead; body: string }> = [];
  let body = '';
  const reader = new ResponseReader(
    {
      onHead: () => (body = ''),
      onBody: (c) => (body += c.toString('latin1')),
      onComplete: (head) => done.push({ head, body }),
    },
    (i) => heads[i] ?? false,
  );
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  if (split > 0) for (let i = 0; i < buf.length; i += split) reader.push(buf.subarray(i, i + split));
  else reader.push(buf);
  let endError: string | null = null;
  try {
    reader.end();
  } catch (err) {
    endError = (err as Error).message;
  }
  return { done, error: reader.error?.message ?? null, endError };
}

describe('ResponseReader', () => {
  it('reads Content-Length, chunked, bodyless and interim responses, in any split', () => {
    const text =
      'HTTP/1.1 100 Continue\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello' +
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n' +
      'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n' + // answers a HEAD: no body
      'HTTP/1.0 200 OK\r\n\r\nuntil close';
    for (const split of [0, 1, 7]) {
      const { done, error, endError } = read(text, [false, false, false, true, false], split);
      expect(error).toBeNull();
      expect(endError).toBeNull();
      expect(done.map((d) => [d.head.status, d.body])).toEqual([
        [200, 'hello'],
        [200, 'abcde'],
        [304, ''],
        [200, ''],
        [200, 'until close'],
      ]);
    }
  });

  it.each([
    ['a bad status line', 'HTTP/1.1 2000 OK\r\n\r\n'],
    ['a missing version', '200 OK\r\nContent-Length: 0\r\n\r\n'],
    ['bare LF line endings', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n'],
    ['a header without a colon', 'HTTP/1.1 200 OK\r\nBroken header\r\n\r\n'],
    ['a bad header name', 'HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n'],
    ['a NUL in a value', 'HTTP/1.1 200 OK\r\nX: a\u0000b\r\nContent-Length: 0\r\n\r\n'],
    ['conflicting Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['chunk data without CRLF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n'],
    ['garbage after a response', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naGARBAGE\r\n\r\n'],
  ])('refuses %s', (_name, text) => {
    const { error, endError } = read(text);
    expect(error ?? endError).not.toBeNull();
  });

  it('refuses a body cut short by the close, and a close inside a head', () => {
    expect(read('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort').endError).toMatch(/closed inside a 200 response after 5 body bytes/);
    expect(read('HTTP/1.1 200 OK\r\nContent-Le').endError).toMatch(/inside a response head/);
    expect(read('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab').endError).toMatch(/closed inside/);
  });
});
