// Before any competitor is measured it must serve the right bytes: each URL is fetched once and its
// sha256 compared, so a fast but wrong server is reported as failed, never benchmarked.
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import { sleep, type Child } from './spawn.js';

export interface Fetched {
  status: number;
  bytes: number;
  sha256: string;
  headers: http.IncomingHttpHeaders;
}

/** GET with a fresh connection (no agent keep-alive), bounded in time. */
export function fetchHash(url: string, timeoutMs = 15_000): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex'), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Polls until the server answers HTTP at all, or its process exits, or time runs out. */
export async function waitForHttp(url: string, child: Child, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.hasExited) throw new Error(`${child.name} exited: ${child.tail() || 'no output'}`);
    try {
      await fetchHash(url, 2000);
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`${child.name} did not answer ${url} within ${timeoutMs} ms (${last}): ${child.tail()}`);
}

/** Throws unless `url` returns 200 with exactly the expected bytes. */
export async function verifyBody(url: string, expectedSha256: string, expectedBytes: number): Promise<void> {
  const got = await fetchHash(url);
  if (got.status !== 200) throw new Error(`GET ${url} answered ${got.status}`);
  if (got.bytes !== expectedBytes || got.sha256 !== expectedSha256) {
    throw new Error(`GET ${url} returned ${got.bytes} bytes with another sha256 than the ${expectedBytes} expected`);
  }
}
