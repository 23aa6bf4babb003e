// zcsend-bench [suite...] [--quick | --smoke] [flags]: see usage() below.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo, type SuiteContext } from './context.js';
import { Autocannon, autocannonVersion } from './load/autocannon.js';
import type { LoadGenerator } from './load/types.js';
import { Wrk } from './load/wrk.js';
import { planFor, withOverrides } from './plan.js';
import { LOOPBACK_CAVEAT, suiteMarkdown, targetsText } from './report/markdown.js';
import { writeRun } from './report/write.js';
import { SUITES, type Mode, type SuiteName, type SuiteResult } from './results.js';
import { pinSelf } from './spawn.js';
import { parseSize } from './units.js';
import { runFastifySuite } from './suites/fastify.js';
import { runFilesSuite } from './suites/files.js';
import { runSenderSuite } from './suites/sender.js';
import { compileC, ensureSystemTools, PACKAGE_DIR, type CProgram } from './tools.js';

const RUNNERS: Record<SuiteName, (ctx: SuiteContext) => ReturnType<typeof runFilesSuite>> = {
  sender: runSenderSuite,
  files: runFilesSuite,
  fastify: runFastifySuite,
};

function usage(): string {
  return `Usage: pnpm bench [suite...] [flags]     (from the repository root)
       node apps/bench/dist/cli.js [suite...] [flags]

Suites: ${SUITES.join(', ')} (default: all, in that order)

  --quick            about 3½ minutes in all: 2 rounds of 0.5 s
  --smoke            seconds: one tiny point per suite (what the test runs)
                     (default: full run, about 14 minutes: 3 rounds of 2 s)
  --rounds N         rounds per point
  --seconds S        measured seconds per run
  --only IDS         only these competitors (comma separated ids)
  --sizes LIST       only these body/file/chunk sizes (e.g. 1k,1m; default: the mode's grid)
  --out DIR          results directory (default apps/bench/results)
  --no-install       do not apt-get wrk / nginx when missing
  --server-cpu N     CPU for the measured server (default 0)
  --load-cpu N       CPU for the load generator (default 1)
  -h, --help         this text
`;
}

class UsageError extends Error {}

interface Cli {
  suites: SuiteName[];
  mode: Mode;
  rounds?: number;
  seconds?: number;
  only: Set<string> | null;
  sizes: number[] | undefined;
  out: string;
  install: boolean;
  serverCpu: number | null;
  loadCpu: number | null;
}

function positiveNumber(name: string, text: string | undefined, integer: boolean): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} wants a positive ${integer ? 'integer' : 'number'}, got ${text}`);
  return n;
}

function parseSizes(text: string): number[] {
  const sizes = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (sizes.length === 0) throw new UsageError('--sizes wants a comma separated list such as 1k,1m');
  return sizes.map((s) => {
    const n = parseSize(s);
    if (n === null) throw new UsageError(`--sizes: ${s} is not a size (try 4k, 64KiB, 1m, 16MiB)`);
    return n;
  });
}

function parseCli(argv: string[]): Cli | null {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean' },
      smoke: { type: 'boolean' },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      only: { type: 'string' },
      sizes: { type: 'string' },
      out: { type: 'string' },
      'no-install': { type: 'boolean' },
      'server-cpu': { type: 'string' },
      'load-cpu': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  if (values.quick && values.smoke) throw new UsageError('--quick and --smoke are exclusive');
  const suites: SuiteName[] = [];
  for (const p of positionals) {
    if (!(SUITES as readonly string[]).includes(p)) throw new UsageError(`unknown suite ${p} (suites: ${SUITES.join(', ')})`);
    if (!suites.includes(p as SuiteName)) suites.push(p as SuiteName);
  }
  const cpus = os.cpus().length;
  const cpuFlag = (name: string, fallback: number) => {
    const text = values[name as 'server-cpu' | 'load-cpu'];
    if (text === undefined) return cpus >= 2 ? fallback : null;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n >= cpus) throw new UsageError(`--${name} wants a CPU number from 0 to ${cpus - 1}`);
    return n;
  };
  return {
    suites: suites.length ? SUITES.filter((s) => suites.includes(s)) : [...SUITES],
    mode: values.smoke ? 'smoke' : values.quick ? 'quick' : 'full',
    rounds: positiveNumber('rounds', values.rounds, true),
    seconds: positiveNumber('seconds', values.seconds, false),
    only: values.only ? new Set(values.only.split(',').map((s) => s.trim()).filter(Boolean)) : null,
    sizes: values.sizes === undefined ? undefined : parseSizes(values.sizes),
    out: path.resolve(values.out ?? path.join(PACKAGE_DIR, 'results')),
    install: !values['no-install'],
    serverCpu: cpuFlag('server-cpu', 0),
    loadCpu: cpuFlag('load-cpu', 1),
  };
}

function pickLoadGenerator(wrk: string | null, loadCpu: number | null, tmp: string): { load: LoadGenerator | null; missing: string | null } {
  if (wrk) return { load: new Wrk(wrk, loadCpu, tmp), missing: null };
  if (autocannonVersion()) return { load: new Autocannon(loadCpu), missing: null };
  return { load: null, missing: 'neither wrk nor autocannon is installed' };
}

export async function main(argv: string[]): Promise<number> {
  let cli: Cli | null;
  try {
    cli = parseCli(argv);
  } catch (err) {
    process.stderr.write(`zcsend-bench: ${(err as Error).message}\n\n${usage()}`);
    return 2;
  }
  if (!cli) {
    process.stdout.write(usage());
    return 0;
  }
  const started = Date.now();
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const plan = withOverrides(planFor(cli.mode), { rounds: cli.rounds, seconds: cli.seconds, sizes: cli.sizes });
  if (cli.loadCpu !== null) pinSelf(cli.loadCpu);
  const machine = machineInfo(cli.serverCpu, cli.loadCpu);
  log(`zcsend-bench: ${cli.mode} run of ${cli.suites.join(', ')}; Linux ${machine.kernel}, ${machine.cpus} CPUs, Node ${machine.node}`);
  if (!machine.pinned) log('  not pinned: needs taskset and 2 CPUs; numbers will mix server and client work');

  const needsHttp = cli.suites.some((s) => s !== 'sender');
  const tools = await ensureSystemTools(cli.install && needsHttp);
  for (const line of tools.log) log(`  ${line}`);
  const c: CProgram = cli.suites.includes('sender') ? await compileC() : { path: null, reason: 'not needed', compiler: 'none' };
  if (cli.suites.includes('sender')) log(`  C reference: ${c.path ? `built with ${c.compiler}` : c.reason}`);

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'zcsend-bench-'));
  scratch = tmp;
  // nginx's worker (user nobody when run as root) must reach the files below.
  chmodSync(tmp, 0o755);
  const { load, missing } = needsHttp ? pickLoadGenerator(tools.wrk, cli.loadCpu, tmp) : { load: null, missing: 'not needed' };
  if (needsHttp) log(`  load generator: ${load?.description ?? missing}`);

  const results: SuiteResult[] = [];
  let crashed = false;
  try {
    for (const name of cli.suites) {
      log(`\n[${name}]`);
      const ctx: SuiteContext = { mode: cli.mode, plan, machine, tmp, serverCpu: cli.serverCpu, loadCpu: cli.loadCpu, load, loadMissing: missing, tools, c, only: cli.only, log };
      const startedAt = new Date().toISOString();
      const loadavg = os.loadavg()[0]!.toFixed(2);
      try {
        const partial = await RUNNERS[name](ctx);
        const result: SuiteResult = { ...partial, mode: cli.mode, machine, startedAt, finishedAt: new Date().toISOString() };
        result.notes.push(`Load average when the suite started: ${loadavg} (other work on the machine shows up as noise).`);
        results.push(result);
        log('');
        log(suiteMarkdown(result).replace(/^!\[.*$\n?/gm, ''));
      } catch (err) {
        crashed = true;
        log(`  suite ${name} failed: ${(err as Error).stack ?? String(err)}`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    scratch = null;
  }

  if (results.length > 0) {
    const runId = `${new Date(started).toISOString().replace(/[:.]/g, '-').slice(0, 19)}-${cli.mode}`;
    const written = await writeRun(cli.out, runId, results);
    log(`\n${LOOPBACK_CAVEAT}\n`);
    log('Targets (TARGETS.md), ratios of medians within this run:');
    log(targetsText(written.targets));
    log(`\nResults: ${written.runDir}\nLatest:  ${written.latestDir}`);
  }
  log(`\nzcsend-bench: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return crashed ? 1 : 0;
}

/** Scratch directory of the run in progress, removed even when the run is interrupted. */
let scratch: string | null = null;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    // The 'exit' handler of spawn.ts kills every child still running.
    process.exit(130);
  });
}
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`zcsend-bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
