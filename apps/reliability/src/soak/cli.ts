// pnpm soak [--ci] [--servers zcserve,zcserve-zc-cache,fastify] [--modes uring,copy] [--requests N] [--connections N]
//           [--seed N] [--timeout MS] [--json FILE]
// Runs each server in each mode under the soak load and prints the checks; exit 1 if any fails.
import * as fs from 'node:fs';
import { probe } from '@zcsend/core';
import { parseFlags } from '../lib/cli-args.js';
import { seedFrom } from '../lib/prng.js';
import type { Mode, ServerKind } from '../lib/server-process.js';
import { CI_SOAK, FULL_SOAK } from './plan.js';
import { summary } from './report.js';
import { runScenario, type ScenarioResult } from './run.js';

const DEFAULT_SEED = 20_251_125;

function list<T extends string>(text: string, allowed: readonly T[], what: string): T[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`unknown ${what} '${item}' (expected ${allowed.join(', ')})`);
  return items as T[];
}

const OPTIONS = {
  ci: { type: 'boolean', default: false },
  servers: { type: 'string', default: 'zcserve,zcserve-zc-cache,fastify' },
  modes: { type: 'string', default: 'uring,copy' },
  requests: { type: 'string' },
  connections: { type: 'string' },
  seed: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'string' },
  'no-rss': { type: 'boolean', default: false },
} as const;

const USAGE = 'Usage: pnpm soak [--ci] [--servers zcserve,zcserve-zc-cache,fastify] [--modes uring,copy] [--requests N]\n                 [--connections N] [--seed N] [--timeout MS] [--json FILE] [--no-rss]\nRuns each server in each mode under the soak load and prints the checks; exit 1 if any fails.\n';

async function main(): Promise<number> {
  const values = parseFlags('soak', USAGE, OPTIONS);
  if (typeof values === 'number') return values;
  const base = values.ci ? CI_SOAK : FULL_SOAK;
  const config = {
    ...base,
    requests: values.requests ? Number(values.requests) : base.requests,
    connections: values.connections ? Number(values.connections) : base.connections,
    timeoutMs: values.timeout ? Number(values.timeout) : base.timeoutMs,
    seed: seedFrom(values.seed ?? process.env.ZCSEND_SEED, DEFAULT_SEED),
  };
  // zcserve-zc-cache: zcserve with --engine zc-cache, so file bodies go through SEND_ZC (auto splices large files).
  const servers = list(values.servers, ['zcserve', 'zcserve-zc-cache', 'fastify'] as const, 'server');
  let modes = list<Mode>(values.modes, ['uring', 'copy'], 'mode');
  const machine = probe();
  if (modes.includes('uring') && !machine.available) {
    if (process.env.ZCSEND_REQUIRE_URING === '1') {
      process.stderr.write(`soak: io_uring required but unavailable: ${machine.reason}\n`);
      return 1;
    }
    process.stderr.write(`soak: io_uring unavailable (${machine.reason}): running the copy mode only\n`);
    modes = modes.filter((m) => m !== 'uring');
  }
  process.stdout.write(`soak: seed ${config.seed}, ${config.requests} requests, ${config.connections} connections, timeout ${config.timeoutMs} ms, kernel ${machine.kernel}\n`);
  const results: ScenarioResult[] = [];
  for (const server of servers) {
    for (const mode of modes) {
      if (server === 'zcserve-zc-cache' && mode === 'copy') continue; // the same as plain zcserve on the copy backend
      const kind: ServerKind = server === 'fastify' ? 'fastify' : 'zcserve';
      const engine = server === 'zcserve-zc-cache' ? 'zc-cache' : undefined;
      const result = await runScenario({ kind, engine, mode, config, checkRss: !values.ci && !values['no-rss'], log: (l) => process.stdout.write(`  ${l}\n`) });
      results.push(result);
      process.stdout.write(summary(result) + '\n');
    }
  }
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), kernel: machine.kernel, node: process.version, results }, null, 2) + '\n');
  const failed = results.filter((r) => !r.passed);
  process.stdout.write(failed.length === 0 ? `soak: all ${results.length} scenarios passed\n` : `soak: ${failed.length} of ${results.length} scenarios FAILED\n`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
