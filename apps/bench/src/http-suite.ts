// The HTTP side of the harness, shared by the `files` and `fastify` suites: start every competitor
// pinned to the server core, check it serves the right bytes, then for each grid point warm each
// one up (to a response count: see Plan.warmupResponses) and measure them interleaved
// (A B C, B C A, ...) for the configured rounds.
import { SkipError, type SuiteContext } from './context.js';
import { verifyBody } from './http-check.js';
import type { LoadGenerator } from './load/types.js';
import { cpuSecondsBetween, cpuSnapshot, resetPeakRss, treePeakRssBytes } from './proc.js';
import type { Cell, CompetitorInfo, Sample } from './results.js';
import type { Child } from './spawn.js';
import { summarize } from './stats.js';
import { formatSize } from './units.js';

export interface RunningServer {
  child: Child;
  /** e.g. http://127.0.0.1:43210 (no trailing slash) */
  baseUrl: string;
  /** Version and configuration, as reported. */
  details: string;
}

export interface HttpCompetitor {
  id: string;
  label: string;
  /** Starts the server pinned to `cpu`; throws SkipError when a prerequisite is missing. */
  start(cpu: number | null): Promise<RunningServer>;
  /** URL path of a grid point for this competitor (e.g. the static prefix differs). */
  path(point: HttpPoint): string;
}

export interface HttpPoint {
  group: string;
  size: number;
  connections: number;
  /** What a correct response body hashes to. */
  sha256: string;
  /** Body length. */
  bytes: number;
}

export interface HttpSuiteOutput {
  competitors: CompetitorInfo[];
  cells: Cell[];
}

interface Live {
  spec: HttpCompetitor;
  info: CompetitorInfo;
  server: RunningServer | null;
}

async function startAll(ctx: SuiteContext, specs: readonly HttpCompetitor[], points: readonly HttpPoint[]): Promise<Live[]> {
  const live: Live[] = [];
  for (const spec of specs) {
    const info: CompetitorInfo = { id: spec.id, label: spec.label, status: 'ok', reason: null, details: null };
    const entry: Live = { spec, info, server: null };
    live.push(entry);
    if (ctx.only && !ctx.only.has(spec.id)) {
      info.status = 'skipped';
      info.reason = 'not selected (--only)';
      continue;
    }
    try {
      entry.server = await spec.start(ctx.serverCpu);
      info.details = entry.server.details;
      // Every body of the grid, once, byte for byte, before any timing.
      const seen = new Set<string>();
      for (const point of points) {
        const path = spec.path(point);
        if (seen.has(path)) continue;
        seen.add(path);
        await verifyBody(entry.server.baseUrl + path, point.sha256, point.bytes);
      }
      ctx.log(`  ${spec.id}: ready (${info.details})`);
    } catch (err) {
      info.status = err instanceof SkipError ? 'skipped' : 'failed';
      info.reason = (err as Error).message;
      ctx.log(`  ${spec.id}: ${info.status}: ${info.reason}`);
      await entry.server?.child.stop();
      entry.server = null;
    }
  }
  return live;
}

async function measure(load: LoadGenerator, server: RunningServer, url: string, connections: number, seconds: number, round: number): Promise<Sample> {
  const pid = server.child.pid;
  resetPeakRss(pid);
  const before = cpuSnapshot(pid);
  const result = await load.run(url, connections, seconds);
  const after = cpuSnapshot(pid);
  const peak = treePeakRssBytes(pid);
  if (server.child.hasExited) throw new Error(`server exited during the run: ${server.child.tail()}`);
  // Big bodies over many connections may complete no response in a short window: bytes still count.
  if (result.bytes === 0) throw new Error(`no response bytes in ${seconds} s${result.errorText ? ` (${result.errorText})` : ''}`);
  return {
    round,
    seconds: result.seconds,
    bytes: result.bytes,
    requests: result.requests,
    cpuSeconds: cpuSecondsBetween(before, after),
    peakRssBytes: peak,
    errors: result.errors,
  };
}

/** Rotates the order each round so no competitor always runs first (or right after the heaviest). */
function roundOrder<T>(items: readonly T[], round: number): T[] {
  const k = items.length ? round % items.length : 0;
  return [...items.slice(k), ...items.slice(0, k)];
}

export async function runHttpSuite(ctx: SuiteContext, specs: readonly HttpCompetitor[], points: readonly HttpPoint[]): Promise<HttpSuiteOutput> {
  const load = ctx.load;
  if (!load) {
    const reason = `no load generator: ${ctx.loadMissing ?? 'unknown'}`;
    return { competitors: specs.map((s) => ({ id: s.id, label: s.label, status: 'skipped', reason, details: null })), cells: [] };
  }
  const live = await startAll(ctx, specs, points);
  const cells: Cell[] = [];
  try {
    for (const point of points) {
      const running = live.filter((l) => l.server && l.info.status === 'ok');
      const byId = new Map<string, Cell>();
      for (const l of running) {
        const cell: Cell = { competitor: l.spec.id, group: point.group, size: point.size, connections: point.connections, samples: [], metrics: null, error: null };
        byId.set(l.spec.id, cell);
        cells.push(cell);
      }
      ctx.log(`  ${point.group} ${formatSize(point.size)} x${point.connections}`);
      const failed = new Set<string>();
      const run = async (l: Live, seconds: number, round: number, record: boolean): Promise<Sample | null> => {
        if (failed.has(l.spec.id)) return null;
        const cell = byId.get(l.spec.id)!;
        try {
          const sample = await measure(load, l.server!, l.server!.baseUrl + l.spec.path(point), point.connections, seconds, round);
          if (record) cell.samples.push(sample);
          return sample;
        } catch (err) {
          // A warm-up that completed nothing (a cold server in a very short window) is not a failure.
          if (!record && !l.server!.child.hasExited) return null;
          failed.add(l.spec.id);
          cell.error = (err as Error).message;
          ctx.log(`    ${l.spec.id}: ${cell.error}`);
          if (l.server!.child.hasExited) {
            l.info.status = 'failed';
            l.info.reason = `crashed at ${formatSize(point.size)} x${point.connections}: ${cell.error}`;
          }
          return null;
        }
      };
      const warmUp = async (l: Live) => {
        const { warmupSeconds, warmupResponses, warmupMaxSeconds } = ctx.plan;
        const first = await run(l, warmupSeconds, -1, false);
        const done = first?.requests ?? 0;
        if (done >= warmupResponses || warmupMaxSeconds <= warmupSeconds) return;
        // One more run, sized from the first one's rate, to reach the response count.
        const rate = first && first.seconds > 0 ? done / first.seconds : 0;
        const rest = warmupMaxSeconds - warmupSeconds;
        await run(l, rate > 0 ? Math.min(rest, (warmupResponses - done) / rate) : rest, -1, false);
      };
      for (const l of running) await warmUp(l);
      for (let round = 0; round < ctx.plan.rounds; round++) {
        for (const l of roundOrder(running, round)) await run(l, ctx.plan.seconds, round, true);
      }
      for (const cell of byId.values()) cell.metrics = cell.error ? null : summarize(cell.samples);
    }
  } finally {
    await Promise.all(live.map((l) => l.server?.child.stop()));
  }
  return { competitors: live.map((l) => l.info), cells };
}
