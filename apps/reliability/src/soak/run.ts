// One soak scenario: a server process (zcserve or the Fastify app, io_uring or copy), a load of
// well-behaved, aborting and stalling clients, then the checks the issue asks for.
import { setTimeout as sleep } from 'node:timers/promises';
import { bodyTree, type FixtureTree } from '../lib/fixtures.js';
import { cpuSeconds, fdCount, fdKinds, isAlive, rssBytes } from '../lib/proc.js';
import { Rng } from '../lib/prng.js';
import { getJson, getOnce, startServer, STATS_PATH, type Mode, type RunningServer, type ServerKind } from '../lib/server-process.js';
import { Connection, type Outcome } from './client.js';
import { planRequest, type PlannedRequest, type SoakConfig } from './plan.js';

/** Keep-alive timeout of both soak servers (zcserve's default, the Fastify app's setting). */
const SERVER_KEEP_ALIVE_MS = 5_000;
/** Share of the requests treated as warm-up by the RSS check (the rest is split early / late). */
const RSS_WARM_UP = 0.4;

/** The counters the checks read, as both servers report them at /_zcsend/stats. */
interface SenderCounters {
  backend: string;
  opsSubmitted: number;
  opsReleased: number;
  zcOpsSubmitted: number;
  /** SEND_ZC ops from registered (fixed) buffers, where the core counts them. */
  fixedOpsSubmitted?: number;
  notifications: number;
  inFlightOps: number;
  pinnedBytes: number;
  pendingNotifications: number;
  violations: number;
  cqOverflows: number;
  bytesSent: number;
  bytesZeroCopy: number;
  bytesCopied: number;
  bytesPlain: number;
  cancellations: number;
  fallbacks: Record<string, number>;
}

interface FileCounters {
  inFlightBytes: number;
  activeSends: number;
  byEngine?: Record<string, { sends: number; bytes: number }>;
  /** sendFile calls that rejected. */
  errors?: number;
  /** The same by error code, where the core counts them. */
  errorCodes?: Record<string, number>;
  fallbacks?: Record<string, number>;
  /** The splice engine's pipe pool, where the core has it: idle pipes are a bounded cache. */
  splice?: { activeSends: number; pipes: number; idlePipes: number };
}

interface ServerStats {
  backend: string;
  fallbackReason: string | null;
  sender: SenderCounters;
  files?: FileCounters | null;
  plugin?: { replies: { inFlight: number; failed: number }; files: FileCounters | null };
  http?: { timeouts: number; aborted: number; timeoutVerdicts?: Record<string, number> };
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  server: ServerKind;
  /** zcserve's --engine, when the scenario forces one. */
  engine: string | null;
  /** File bodies by engine, as the server counted them. */
  byEngine: Record<string, { sends: number; bytes: number }> | null;
  /** File sends that rejected (a client going away counts), and file-engine fallbacks. */
  fileErrors: number | null;
  /** Rejected file sends by error code (ZCSEND_ERR_*, a Node code, or unknown). */
  fileErrorCodes: Record<string, number> | null;
  fileFallbacks: Record<string, number> | null;
  mode: Mode;
  backend: string;
  seed: number;
  config: Omit<SoakConfig, 'seed'>;
  seconds: number;
  serverCpuSeconds: number;
  requests: {
    planned: number;
    completed: number;
    aborted: number;
    stalled: number;
    ranges: number;
    closedByServer: number;
    retried: number;
    statuses: Record<string, number>;
  };
  bodyBytesVerified: number;
  /** Baseline and after: open fds minus the fds of idle pooled pipes. */
  fds: { baseline: number; peak: number; afterQuiesce: number; pooledPipeFdsAfter: number; kindsBaseline: Record<string, number>; kindsAfter: Record<string, number> };
  /**
   * RSS at the start, peaks of the warm-up (the first RSS_WARM_UP of the requests) and of the
   * early and late halves of the rest, after quiesce, and the late peak's growth over the early.
   */
  rss: { start: number; warmUpPeak: number; earlyPeak: number; latePeak: number; afterQuiesce: number; lateGrowthPct: number };
  stalledRelease: { stalledOpen: number; releasedWhileStalledOpen: boolean; pinnedBytes: number; inFlightOps: number };
  senderAfter: SenderCounters | null;
  /** zcserve's HTTP counters after quiesce (socket timeouts, responses cut short). */
  httpAfter: { timeouts: number; aborted: number; timeoutVerdicts: Record<string, number> | null } | null;
  exit: { code: number | null; signal: string | null } | null;
  failures: string[];
  checks: Check[];
  passed: boolean;
}

export interface ScenarioOptions {
  kind: ServerKind;
  /** zcserve's file engine (auto by default): 'zc-cache' makes every file body a SEND_ZC. */
  engine?: 'auto' | 'zc-cache' | 'splice' | 'copy';
  mode: Mode;
  config: SoakConfig;
  /** Apply the RSS criterion (meaningless for a run of a few seconds). */
  checkRss: boolean;
  /** Reuse an existing tree (its sizes must cover config.sizes). */
  tree?: FixtureTree;
  log?: (line: string) => void;
}

async function stats(server: RunningServer): Promise<ServerStats> {
  return getJson<ServerStats>(`${server.url}${STATS_PATH}`);
}

function fileCounters(s: ServerStats): FileCounters | null {
  return s.files ?? s.plugin?.files ?? null;
}

function bodiesInFlight(s: ServerStats): number {
  const files = fileCounters(s);
  const pipesInUse = files?.splice ? files.splice.pipes - files.splice.idlePipes + files.splice.activeSends : 0;
  return (files?.inFlightBytes ?? 0) + (files?.activeSends ?? 0) + pipesInUse + (s.plugin?.replies.inFlight ?? 0);
}

/** Fds held by idle pooled pipes (two per pipe): a bounded cache, not a leak. */
function pooledPipeFds(s: ServerStats): number {
  return 2 * (fileCounters(s)?.splice?.idlePipes ?? 0);
}

function quiet(s: ServerStats): boolean {
  const c = s.sender;
  return c.inFlightOps === 0 && c.pinnedBytes === 0 && c.pendingNotifications === 0 && bodiesInFlight(s) === 0;
}

/** Polls until `predicate` holds or `timeoutMs` passes; returns the last value. */
async function pollUntil<T>(read: () => Promise<T> | T, predicate: (v: T) => boolean, timeoutMs: number, everyMs = 100): Promise<{ value: T; ok: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (predicate(value)) return { value, ok: true };
    if (Date.now() > deadline) return { value, ok: false };
    await sleep(everyMs);
  }
}

export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const { kind, mode, config } = options;
  const label = `${kind}${options.engine ? ` --engine ${options.engine}` : ''}/${mode}`;
  const log = options.log ?? (() => {});
  const sizes = config.sizes.map(([s]) => s);
  const tree = options.tree ?? bodyTree(sizes);
  const rels = new Map<number, string>();
  const expected = new Map<string, Buffer>();
  for (const f of tree.files) {
    const size = f.data.length;
    if (!rels.has(size)) rels.set(size, f.rel);
    expected.set(f.rel, f.data);
  }
  for (const s of sizes) if (!rels.has(s)) throw new Error(`the tree has no body of ${s} bytes`);

  const failures: string[] = [];
  const fail = (msg: string) => {
    if (failures.length < 50) failures.push(msg);
  };
  const started = Date.now();
  const server = await startServer({ kind, mode, root: tree.root, timeoutMs: config.timeoutMs, args: options.engine ? ['--engine', options.engine] : [] });
  log(`${label}: pid ${server.pid}, ${server.url}, backend ${server.backend}`);
  try {
    // Warm up: one request per body on fresh connections, so lazily created resources (the ring,
    // cache entries) exist before the fd baseline is taken.
    for (const rel of rels.values()) {
      const res = await getOnce(`${server.url}/${kind === 'fastify' ? 'static/' : ''}${rel}`, 60_000);
      if (res.status !== 200 || !res.body.equals(expected.get(rel)!)) fail(`warm-up ${rel}: status ${res.status}, ${res.body.length} bytes`);
    }
    const statsAtBaseline = await stats(server);
    const settle = await pollUntil(
      async () => {
        const a = fdCount(server.pid);
        await sleep(150);
        return [a, fdCount(server.pid)] as const;
      },
      ([a, b]) => a === b,
      5000,
      0,
    );
    // Counted without pooled idle pipes, which a later load may grow up to the pool's bound.
    const fdBaseline = settle.value[1] - pooledPipeFds(statsAtBaseline);
    const kindsBaseline = fdKinds(server.pid);
    const rssStart = rssBytes(server.pid);
    const cpuStart = cpuSeconds(server.pid);

    // ---- load ----
    const rng = new Rng(config.seed);
    const plans: PlannedRequest[] = [];
    for (let i = 0; i < config.requests; i++) plans.push(planRequest(i, kind, config, rels, rng));
    let next = 0;
    let finished = 0;
    // RSS by phase: a warm-up (JIT tiers, heap sizing, caches filling: measured here to climb
    // for the first ~17,000 requests of zcserve's soak, then stay flat through 60,000), then an
    // early and a late window. A leak grows from the early window to the late one.
    const earlyFrom = Math.floor(config.requests * RSS_WARM_UP);
    const lateFrom = Math.floor(config.requests * (RSS_WARM_UP + (1 - RSS_WARM_UP) / 2));
    let rssWarmUpPeak = rssStart;
    let rssEarlyPeak = 0;
    let rssLatePeak = 0;
    let fdPeak = fdBaseline;
    const sampler = setInterval(() => {
      const rss = rssBytes(server.pid);
      if (finished < earlyFrom) rssWarmUpPeak = Math.max(rssWarmUpPeak, rss);
      else if (finished < lateFrom) rssEarlyPeak = Math.max(rssEarlyPeak, rss);
      else rssLatePeak = Math.max(rssLatePeak, rss);
      fdPeak = Math.max(fdPeak, fdCount(server.pid));
    }, 200);
    const counts = { completed: 0, aborted: 0, stalled: 0, ranges: 0, closedByServer: 0, retried: 0, statuses: {} as Record<string, number> };
    let bodyBytesVerified = 0;
    // Stalled clients stay connected; the oldest go once past the server's timeout when more than
    // `maxStalledHeld` are open, so thousands of them do not push loopback TCP into memory pressure.
    const stalledConnections: Array<{ connection: Connection; at: number }> = [];
    const maxStalledHeld = 64;
    const sweeper = setInterval(() => {
      while (stalledConnections.length > maxStalledHeld && Date.now() - stalledConnections[0]!.at > config.timeoutMs + 1000) {
        stalledConnections.shift()!.connection.destroy();
      }
    }, 250);
    let lastStallAt = 0;
    let progressAt = Date.now();

    const worker = async (slot: number) => {
      let conn: Connection | null = null;
      while (next < plans.length && failures.length < 50) {
        const plan = plans[next++]!;
        if (plan.range) counts.ranges++;
        const want = expected.get(plan.rel)!;
        let outcome: Outcome | null = null;
        for (let attempt = 0; attempt < 2; attempt++) {
          if (!conn || conn.closed) conn = await Connection.open(server.port);
          const reused = conn.used > 0;
          const watchdog = setTimeout(() => {
            fail(`request ${plan.index} (${plan.target}, ${plan.behaviour}) made no progress for 120 s`);
            conn?.destroy();
          }, 120_000);
          outcome = await conn.request(plan, want);
          clearTimeout(watchdog);
          // A keep-alive connection the server closed just as we reused it: retry once, as clients do.
          if (outcome.kind === 'closed' && reused && !outcome.responseStarted && attempt === 0) {
            counts.retried++;
            conn = null;
            continue;
          }
          break;
        }
        switch (outcome!.kind) {
          case 'complete':
            counts.completed++;
            counts.statuses[outcome!.status] = (counts.statuses[outcome!.status] ?? 0) + 1;
            bodyBytesVerified += outcome!.bodyBytes;
            if (plan.behaviour === 'abort-mid-body') conn = null;
            break;
          case 'aborted':
            counts.aborted++;
            bodyBytesVerified += outcome!.bodyBytes;
            conn = null;
            break;
          case 'stalled':
            counts.stalled++;
            lastStallAt = Date.now();
            stalledConnections.push({ connection: outcome!.connection, at: lastStallAt });
            conn = null;
            break;
          case 'closed':
            counts.closedByServer++;
            fail(`request ${plan.index} (${plan.target}, slot ${slot}): connection closed after ${outcome!.bodyBytes} body bytes (${outcome!.error ?? 'FIN'})`);
            conn = null;
            break;
          case 'bad':
            fail(`request ${plan.index}: ${outcome!.reason}`);
            conn = null;
            break;
        }
        finished++;
        progressAt = Date.now();
      }
      conn?.destroy();
    };
    const progress = setInterval(() => {
      log(`${label}: ${finished}/${plans.length} done, ${(bodyBytesVerified / 2 ** 30).toFixed(2)} GiB verified, rss ${(rssBytes(server.pid) / 2 ** 20).toFixed(0)} MiB, fds ${fdCount(server.pid)}`);
      if (Date.now() - progressAt > 180_000) fail('no request finished for 180 s');
    }, 10_000);
    await Promise.all(Array.from({ length: config.connections }, (_, i) => worker(i)));
    clearInterval(progress);
    clearInterval(sampler);
    clearInterval(sweeper);
    // A run too short for a sample in both windows cannot be judged (the check then fails, below);
    // the figures show the RSS at the end of the load.
    const rssJudged = rssEarlyPeak > 0 && rssLatePeak > 0;
    if (rssEarlyPeak === 0) rssEarlyPeak = rssBytes(server.pid);
    if (rssLatePeak === 0) rssLatePeak = rssBytes(server.pid);

    // ---- stalled clients still connected: the server's timeout must have let go of their buffers ----
    const waitStall = Math.max(0, lastStallAt + config.timeoutMs - Date.now());
    await sleep(waitStall);
    const stalledOpen = stalledConnections.filter((s) => !s.connection.closed).length;
    // A stalled connection is cut at its second timeout (the first only notes the kernel's count of
    // acknowledged bytes): the socket timeout mid-body, the keep-alive timeout once its response finished.
    const cutWithin = 2 * Math.max(config.timeoutMs, SERVER_KEEP_ALIVE_MS);
    const whileStalled = await pollUntil(() => stats(server), quiet, cutWithin + 5_000, 200);
    const stalledRelease = {
      stalledOpen,
      releasedWhileStalledOpen: whileStalled.ok,
      pinnedBytes: whileStalled.value.sender.pinnedBytes,
      inFlightOps: whileStalled.value.sender.inFlightOps,
    };
    for (const s of stalledConnections) s.connection.destroy();

    // ---- quiesce ----
    const after = await pollUntil(() => stats(server), quiet, 20_000, 200);
    const senderAfter = after.value.sender;
    let pooledAfter = 0;
    const fdsAfter = await pollUntil(
      async () => {
        pooledAfter = pooledPipeFds(await stats(server));
        await sleep(100); // let the server close the stats connection itself
        return fdCount(server.pid) - pooledAfter;
      },
      (n) => n <= fdBaseline,
      15_000,
      200,
    );
    const kindsAfter = fdKinds(server.pid);
    const rssAfter = rssBytes(server.pid);
    const cpu = cpuSeconds(server.pid) - cpuStart;
    const alive = isAlive(server.pid) && server.exit === null;
    const exit = await server.stop();

    const growth = rssEarlyPeak > 0 ? ((rssLatePeak - rssEarlyPeak) / rssEarlyPeak) * 100 : 0;
    const non2xx = Object.entries(counts.statuses).filter(([s]) => Number(s) >= 300);
    const checks: Check[] = [
      { name: 'no crash', ok: alive && exit.code === 0, detail: `alive until stopped: ${alive}; exit ${exit.signal ?? exit.code}` },
      { name: 'every completed response byte-exact, no 5xx', ok: failures.length === 0 && non2xx.length === 0, detail: `${counts.completed} completed, ${(bodyBytesVerified / 2 ** 20).toFixed(0)} MiB verified, statuses ${JSON.stringify(counts.statuses)}, ${failures.length} failures` },
      { name: 'buffers released while stalled clients stay connected', ok: stalledRelease.releasedWhileStalledOpen || stalledOpen === 0, detail: `${stalledOpen} stalled connections open; pinned ${stalledRelease.pinnedBytes} B, ${stalledRelease.inFlightOps} ops in flight` },
      { name: 'sender quiet after quiesce', ok: after.ok, detail: `inFlightOps ${senderAfter.inFlightOps}, pinnedBytes ${senderAfter.pinnedBytes}, pendingNotifications ${senderAfter.pendingNotifications}, body bytes in flight ${bodiesInFlight(after.value)}` },
      { name: 'notifications equal zero-copy ops; every op released', ok: senderAfter.notifications === senderAfter.zcOpsSubmitted && senderAfter.opsReleased === senderAfter.opsSubmitted, detail: `notifications ${senderAfter.notifications} / zc ops ${senderAfter.zcOpsSubmitted}; released ${senderAfter.opsReleased} / submitted ${senderAfter.opsSubmitted}` },
      { name: 'no protocol violations', ok: senderAfter.violations === 0, detail: `violations ${senderAfter.violations}, CQ overflows ${senderAfter.cqOverflows}` },
      { name: 'open fds back to baseline', ok: fdsAfter.ok, detail: `baseline ${fdBaseline}, after ${fdsAfter.value} (not counting ${pooledAfter} fds of idle pooled pipes), peak ${fdPeak}; ${JSON.stringify(kindsAfter)}` },
    ];
    const byEngine = fileCounters(after.value)?.byEngine ?? null;
    if (mode === 'uring') {
      // SEND_ZC through the Sender, or file bodies through ring splice chains.
      const splices = byEngine?.splice?.sends ?? 0;
      checks.push({ name: 'io_uring really used', ok: senderAfter.backend === 'io_uring' && (senderAfter.zcOpsSubmitted > 0 || splices > 0), detail: `backend ${senderAfter.backend}, SEND_ZC ops ${senderAfter.zcOpsSubmitted}, splice responses ${splices}` });
    }
    if (options.checkRss) {
      const detail = `early peak ${(rssEarlyPeak / 2 ** 20).toFixed(0)} MiB, late peak ${(rssLatePeak / 2 ** 20).toFixed(0)} MiB (${growth.toFixed(1)}%)`;
      checks.push({ name: 'RSS growth after warm-up < 10%', ok: rssJudged && growth < 10, detail: rssJudged ? detail : `run too short to judge (no sample in a window; use more --requests): ${detail}` });
    }
    return {
      server: kind,
      engine: options.engine ?? null,
      byEngine,
      fileErrors: fileCounters(after.value)?.errors ?? null,
      fileErrorCodes: fileCounters(after.value)?.errorCodes ?? null,
      fileFallbacks: fileCounters(after.value)?.fallbacks ?? null,
      mode,
      backend: server.backend,
      seed: config.seed,
      config: { ...config },
      seconds: (Date.now() - started) / 1000,
      serverCpuSeconds: cpu,
      requests: { planned: plans.length, ...counts },
      bodyBytesVerified,
      fds: { baseline: fdBaseline, peak: fdPeak, afterQuiesce: fdsAfter.value, pooledPipeFdsAfter: pooledAfter, kindsBaseline, kindsAfter },
      rss: { start: rssStart, warmUpPeak: rssWarmUpPeak, earlyPeak: rssEarlyPeak, latePeak: rssLatePeak, afterQuiesce: rssAfter, lateGrowthPct: growth },
      stalledRelease,
      senderAfter,
      httpAfter: after.value.http
        ? { timeouts: after.value.http.timeouts, aborted: after.value.http.aborted, timeoutVerdicts: after.value.http.timeoutVerdicts ?? null }
        : null,
      exit: { code: exit.code, signal: exit.signal },
      failures,
      checks,
      passed: checks.every((c) => c.ok),
    };
  } catch (err) {
    const out = server.output();
    throw new Error(`${label} soak aborted: ${(err as Error).stack}\nserver stderr: ${out.stderr.slice(-4000)}`);
  } finally {
    if (!server.exit) await server.stop(5000);
    if (!options.tree) tree.cleanup();
  }
}
