// A fuzz run: zcserve in its own process over a hostile tree, `iterations` generated cases sent
// `concurrency` at a time, every exchange judged, then the server must still be up, serve a
// known file byte-exact, hold nothing, and have its fds back at the baseline.
import { setTimeout as sleep } from 'node:timers/promises';
import { hostileTree } from '../lib/fixtures.js';
import { fdCount, isAlive } from '../lib/proc.js';
import { Rng } from '../lib/prng.js';
import { getJson, getOnce, startServer, STATS_PATH, type Mode } from '../lib/server-process.js';
import { exchange, isTruncation, judge, ServedContent } from './check.js';
import { NodeParserOracle } from './node-oracle.js';
import { generateCase, type FuzzCase } from './generate.js';

export interface FuzzOptions {
  mode: Mode;
  seed: number;
  iterations: number;
  concurrency: number;
  /** How long one exchange may take before it counts as a hang. */
  deadlineMs?: number;
  /** Run the server through this launcher (argv prefix). */
  launcher?: string[];
  log?: (line: string) => void;
}

export interface FuzzFailure {
  iteration: number;
  kind: string;
  problems: string[];
  /** The request bytes, base64: replay with `--replay`. */
  request: string;
  statuses: number[];
}

export interface FuzzResult {
  mode: Mode;
  backend: string;
  seed: number;
  iterations: number;
  seconds: number;
  byKind: Record<string, number>;
  statuses: Record<string, number>;
  /** Connections that got no answer (closed by the server, or silent waiting for more input). */
  closedWithoutAnswer: number;
  /** Responses cut short after the client half-closed (tolerated; Node ends the socket on FIN). */
  truncatedAfterHalfClose: number;
  /** Responses cut short because Node's parser rejected a later request on the connection (tolerated). */
  truncatedByParseError: number;
  responses: number;
  failures: FuzzFailure[];
  serverAlive: boolean;
  exit: { code: number | null; signal: string | null } | null;
  fds: { baseline: number; after: number };
  senderQuiet: boolean;
  sanityOk: boolean;
  passed: boolean;
}

interface QuietStats {
  sender: { inFlightOps: number; pinnedBytes: number; pendingNotifications: number; violations: number };
  files?: { splice?: { idlePipes: number } };
}

/** Open fds not counting idle pooled pipes (a bounded cache of the splice engine). */
function fdsWithoutPool(pid: number, s: QuietStats): number {
  return fdCount(pid) - 2 * (s.files?.splice?.idlePipes ?? 0);
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const log = options.log ?? (() => {});
  const deadlineMs = options.deadlineMs ?? 10_000;
  const tree = hostileTree();
  const served = new ServedContent(tree);
  const started = Date.now();
  const server = await startServer({ kind: 'zcserve', mode: options.mode, root: tree.root, timeoutMs: 5000, launcher: options.launcher });
  log(`fuzz ${options.mode}: zcserve pid ${server.pid}, backend ${server.backend}, seed ${options.seed}, ${options.iterations} cases`);
  try {
    const large = tree.byRel.get('large.bin')!;
    const warm = await getOnce(`${server.url}${large.urlPath}`);
    if (!warm.body.equals(large.data)) throw new Error('warm-up response differs from the file');
    await sleep(200);
    const fdBaseline = fdsWithoutPool(server.pid, await getJson<QuietStats>(`${server.url}${STATS_PATH}`));

    const rng = new Rng(options.seed);
    const cases: FuzzCase[] = [];
    for (let i = 0; i < options.iterations; i++) cases.push(generateCase(rng, i));
    const byKind: Record<string, number> = {};
    const statuses: Record<string, number> = {};
    const failures: FuzzFailure[] = [];
    let closedWithoutAnswer = 0;
    let truncatedAfterHalfClose = 0;
    let truncatedByParseError = 0;
    const oracle = new NodeParserOracle();
    await oracle.start();
    let responses = 0;
    let next = 0;
    const worker = async () => {
      while (next < cases.length && failures.length < 20) {
        const c = cases[next++]!;
        byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
        const result = await exchange(server.port, c, deadlineMs);
        responses += result.responses.length;
        if (result.responses.length === 0) closedWithoutAnswer++;
        for (const r of result.responses) statuses[r.head.status] = (statuses[r.head.status] ?? 0) + 1;
        // A body cut by the close is acceptable only where Node's http server itself cuts it: after
        // a client half-close (it answers FIN with socket.end()) or a request its parser rejects
        // (it destroys the connection). Both counted and reported (see RELIABILITY.md).
        let cutByNode = false;
        if (result.error && isTruncation(result.error)) {
          if (c.halfClose) {
            cutByNode = true;
            truncatedAfterHalfClose++;
          } else if ((await oracle.judge(c.bytes)).clientError) {
            cutByNode = true;
            truncatedByParseError++;
          }
        }
        const problems = judge(result, served, tree, cutByNode);
        if (!isAlive(server.pid)) problems.push('the server process died');
        if (problems.length > 0) {
          failures.push({ iteration: c.iteration, kind: c.kind, problems, request: c.bytes.toString('base64'), statuses: result.responses.map((r) => r.head.status) });
          log(`fuzz: case ${c.iteration} (${c.kind}) failed: ${problems.join('; ')}`);
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    await oracle.stop();

    const serverAlive = isAlive(server.pid) && server.exit === null;
    let sanityOk = false;
    let senderQuiet = false;
    let fdsAfter = -1;
    if (serverAlive) {
      const again = await getOnce(`${server.url}${large.urlPath}`);
      sanityOk = again.status === 200 && again.body.equals(large.data);
      const deadline = Date.now() + 10_000;
      for (;;) {
        const s = await getJson<QuietStats>(`${server.url}${STATS_PATH}`);
        fdsAfter = fdsWithoutPool(server.pid, s);
        senderQuiet = s.sender.inFlightOps === 0 && s.sender.pinnedBytes === 0 && s.sender.pendingNotifications === 0 && s.sender.violations === 0;
        if ((senderQuiet && fdsAfter <= fdBaseline) || Date.now() > deadline) break;
        await sleep(200);
      }
    }
    const exit = await server.stop();
    const passed = failures.length === 0 && serverAlive && sanityOk && senderQuiet && fdsAfter <= fdBaseline && exit.code === 0;
    return {
      mode: options.mode,
      backend: server.backend,
      seed: options.seed,
      iterations: cases.length,
      seconds: (Date.now() - started) / 1000,
      byKind,
      statuses,
      closedWithoutAnswer,
      truncatedAfterHalfClose,
      truncatedByParseError,
      responses,
      failures,
      serverAlive,
      exit: { code: exit.code, signal: exit.signal },
      fds: { baseline: fdBaseline, after: fdsAfter },
      senderQuiet,
      sanityOk,
      passed,
    };
  } catch (err) {
    throw new Error(`fuzz ${options.mode} aborted: ${(err as Error).stack}\nserver stderr: ${server.output().stderr.slice(-4000)}`);
  } finally {
    if (!server.exit) await server.stop(5000);
    tree.cleanup();
  }
}

export function fuzzSummary(r: FuzzResult): string {
  const lines = [
    `${r.passed ? 'PASS' : 'FAIL'} fuzz zcserve / ${r.mode} (${r.backend}) seed ${r.seed}: ${r.iterations} cases in ${r.seconds.toFixed(1)} s`,
    `  cases by kind ${JSON.stringify(r.byKind)}`,
    `  ${r.responses} responses, statuses ${JSON.stringify(r.statuses)}; ${r.closedWithoutAnswer} connections without an answer; bodies cut by Node: ${r.truncatedAfterHalfClose} after a client half-close, ${r.truncatedByParseError} after a parse error`,
    `  server alive ${r.serverAlive}, exit ${r.exit?.signal ?? r.exit?.code}, sanity GET ${r.sanityOk ? 'byte-exact' : 'FAILED'}, sender quiet ${r.senderQuiet}, fds ${r.fds.baseline} -> ${r.fds.after}`,
  ];
  for (const f of r.failures.slice(0, 10)) lines.push(`  failure: case ${f.iteration} (${f.kind}): ${f.problems.join('; ')}\n    request (base64): ${f.request.slice(0, 400)}`);
  return lines.join('\n');
}
