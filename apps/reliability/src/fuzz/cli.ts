// pnpm fuzz [--iterations N] [--seed N] [--concurrency N] [--modes uring,copy] [--json FILE]
// Fuzzes zcserve with hostile requests; prints the seed, figures and any failing case (base64).
import * as fs from 'node:fs';
import { probe } from '@zcsend/core';
import { parseFlags } from '../lib/cli-args.js';
import { seedFrom } from '../lib/prng.js';
import type { Mode } from '../lib/server-process.js';
import { fuzzSummary, runFuzz, type FuzzResult } from './run.js';

export const DEFAULT_FUZZ_SEED = 0x5eed_2025;

const OPTIONS = {
  iterations: { type: 'string', default: '20000' },
  seed: { type: 'string' },
  concurrency: { type: 'string', default: '8' },
  modes: { type: 'string', default: 'uring,copy' },
  json: { type: 'string' },
} as const;

const USAGE = 'Usage: pnpm fuzz [--iterations N (20000)] [--seed N] [--concurrency N (8)] [--modes uring,copy] [--json FILE]\nFuzzes zcserve with hostile requests; prints the seed, figures and any failing case (base64).\n';

async function main(): Promise<number> {
  const values = parseFlags('fuzz', USAGE, OPTIONS);
  if (typeof values === 'number') return values;
  const seed = seedFrom(values.seed ?? process.env.ZCSEND_SEED, DEFAULT_FUZZ_SEED);
  let modes = values.modes.split(',').map((m) => m.trim()) as Mode[];
  const machine = probe();
  if (modes.includes('uring') && !machine.available) {
    process.stderr.write(`fuzz: io_uring unavailable (${machine.reason}): copy mode only\n`);
    modes = modes.filter((m) => m !== 'uring');
  }
  const results: FuzzResult[] = [];
  for (const mode of modes) {
    const result = await runFuzz({
      mode,
      seed,
      iterations: Number(values.iterations),
      concurrency: Number(values.concurrency),
      log: (l) => process.stdout.write(`  ${l}\n`),
    });
    results.push(result);
    process.stdout.write(fuzzSummary(result) + '\n');
  }
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), kernel: machine.kernel, results }, null, 2) + '\n');
  return results.every((r) => r.passed) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fuzz: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
