// The HTTP fuzzer against zcserve, bounded and seeded (the seed is printed with the result).
import { describe, expect, it } from 'vitest';
import { hostileTree, OUTSIDE_MARKER } from '../src/lib/fixtures.js';
import { judge, ServedContent, type ExchangeResult } from '../src/fuzz/check.js';
import { generateCase } from '../src/fuzz/generate.js';
import { fuzzSummary, runFuzz } from '../src/fuzz/run.js';
import { Rng } from '../src/lib/prng.js';
import type { ResponseHead } from '../src/lib/http-response.js';
import { MODE } from './helpers.js';

const SEED = 0x5eed_2025;
const ITERATIONS = 2000;

function head(status: number, headers: Record<string, string> = {}): ResponseHead {
  return { version: '1.1', status, reason: 'x', headers, rawHeaders: Object.entries(headers), headBytes: 0 };
}

describe('fuzz oracle', () => {
  it('generates the same cases from the same seed', () => {
    const a = Array.from({ length: 50 }, (_, i) => generateCase(new Rng(7), i).bytes.toString('base64'));
    const b = Array.from({ length: 50 }, (_, i) => generateCase(new Rng(7), i).bytes.toString('base64'));
    expect(a).toEqual(b);
  });

  it('flags outside content, foreign bodies, bad slices, 5xx and broken HTTP', () => {
    const tree = hostileTree();
    try {
      const served = new ServedContent(tree);
      const small = tree.byRel.get('small.txt')!.data;
      const ok = (responses: ExchangeResult['responses'], error: string | null = null): string[] =>
        judge({ responses, received: 1, closed: true, error }, served, tree);
      expect(ok([{ head: head(200), body: small }])).toEqual([]);
      expect(ok([{ head: head(206, { 'content-range': `bytes 2-5/${small.length}` }), body: small.subarray(2, 6) }])).toEqual([]);
      expect(ok([{ head: head(404), body: Buffer.from(`${OUTSIDE_MARKER}\n`) }])).not.toEqual([]);
      expect(ok([{ head: head(200), body: Buffer.from('root:x:0:0:root:/root:/bin/bash') }])).not.toEqual([]);
      expect(ok([{ head: head(200), body: Buffer.from('not a served file') }])).not.toEqual([]);
      expect(ok([{ head: head(206, { 'content-range': `bytes 2-5/${small.length}` }), body: small.subarray(3, 7) }])).not.toEqual([]);
      expect(ok([{ head: head(500), body: Buffer.alloc(0) }])).not.toEqual([]);
      expect(ok([], 'connection closed inside a 200 response after 0 body bytes')).not.toEqual([]);
    } finally {
      tree.cleanup();
    }
  });
});

describe(`fuzz zcserve (${MODE})`, () => {
  it(`survives ${ITERATIONS} hostile requests: valid HTTP or a close, nothing from outside the root`, async () => {
    const result = await runFuzz({ mode: MODE, seed: SEED, iterations: ITERATIONS, concurrency: 8 });
    const report = fuzzSummary(result);
    console.log(report);
    expect(result.failures, report).toEqual([]);
    expect(result.serverAlive, report).toBe(true);
    expect(result.sanityOk, report).toBe(true);
    expect(result.senderQuiet, report).toBe(true);
    expect(result.fds.after, report).toBeLessThanOrEqual(result.fds.baseline);
    expect(result.exit?.code, report).toBe(0);
    // The run exercised every kind of case and got real answers, not just closes.
    expect(Object.keys(result.byKind).sort()).toEqual(['garbage', 'headers', 'path', 'pipeline', 'range', 'request-line']);
    expect(result.statuses['200'] ?? 0).toBeGreaterThan(100);
    expect(result.statuses['206'] ?? 0).toBeGreaterThan(0);
    expect(result.statuses['400'] ?? 0).toBeGreaterThan(100);
  });
});
