// `sender`: raw sends over one loopback TCP connection to a sink: the core Sender against
// socket.write and against the same loop in C with liburing. Each run is a fresh process on the
// server core (the sink on the load core) that measures its own CPU time over its window.
import { SkipError, type SuiteContext } from '../context.js';
import { ownScript } from '../launch.js';
import type { Cell, CompetitorInfo, Sample, SuiteResult } from '../results.js';
import { Child } from '../spawn.js';
import { summarize } from '../stats.js';
import { formatSize } from '../units.js';

interface SenderCompetitor {
  id: string;
  label: string;
  /** The command for one run, or a SkipError. */
  command(port: number, chunk: number, seconds: number, warmup: number): [string, string[]];
}

interface RunReport {
  bytes: number;
  seconds: number;
  cpuSeconds: number;
  details?: string;
  ringSetup?: string;
  notifications?: number;
  copiedNotifications?: number;
  stats?: { zcOpsSubmitted?: number; notifications?: number; bytesCopied?: number; bytesZeroCopy?: number; bytesPlain?: number } | null;
}

function competitors(ctx: SuiteContext): SenderCompetitor[] {
  const node = (id: string, label: string, mode: string): SenderCompetitor => ({
    id,
    label,
    command: (port, chunk, seconds, warmup) => [
      process.execPath,
      [ownScript('./drivers/node-sender.js'), '127.0.0.1', String(port), mode, String(chunk), String(seconds), String(warmup)],
    ],
  });
  const c = (id: string, label: string, mode: string): SenderCompetitor => ({
    id,
    label,
    command: (port, chunk, seconds, warmup) => {
      if (!ctx.c.path) throw new SkipError(`C program unavailable: ${ctx.c.reason}`);
      return [ctx.c.path, ['send', '127.0.0.1', String(port), mode, String(chunk), String(seconds), String(warmup)]];
    },
  });
  return [
    node('zcsend-zc', 'core Sender, SEND_ZC (adaptive: false)', 'zc'),
    c('c-send-zc', 'C liburing SEND_ZC', 'zc'),
    node('zcsend-adaptive', 'core Sender, default (loopback: ring send)', 'adaptive'),
    c('c-ring-send', 'C liburing IORING_OP_SEND', 'ring'),
    node('socket-write', 'node socket.write', 'write'),
    c('c-send', 'C send(2)', 'send'),
  ];
}

async function startSink(ctx: SuiteContext): Promise<{ child: Child; port: number; kind: string }> {
  const [cmd, args, kind] = ctx.c.path ? [ctx.c.path, ['sink'], 'C sink (recv into 4 MiB buffer)'] : [process.execPath, [ownScript('./drivers/sink.js')], 'Node sink'];
  const child = new Child('sink', cmd, args, { cpu: ctx.loadCpu });
  try {
    const match = await child.waitFor(/^listening (\d+)/m, 10_000);
    return { child, port: Number(match[1]), kind };
  } catch (err) {
    await child.stop();
    throw err;
  }
}

async function runOnce(ctx: SuiteContext, spec: SenderCompetitor, port: number, chunk: number, round: number): Promise<{ sample: Sample; report: RunReport }> {
  const { seconds, warmupSeconds } = ctx.plan.sender;
  const [cmd, args] = spec.command(port, chunk, seconds, warmupSeconds);
  const child = new Child(spec.id, cmd, args, { cpu: ctx.serverCpu });
  const killer = setTimeout(() => child.signal('SIGKILL'), (seconds + warmupSeconds) * 1000 + 30_000);
  const exit = await child.exited;
  clearTimeout(killer);
  const skip = /^skip (.*)$/m.exec(child.output);
  if (skip) throw new SkipError(skip[1]);
  const line = /^(\{.*\})$/m.exec(child.output);
  if (exit.code !== 0 || !line) throw new Error(`${spec.id} failed (${exit.signal ?? `code ${exit.code}`}): ${child.tail()}`);
  const report = JSON.parse(line[1]!) as RunReport;
  return {
    report,
    sample: { round, seconds: report.seconds, bytes: report.bytes, requests: null, cpuSeconds: report.cpuSeconds, peakRssBytes: null, errors: 0 },
  };
}

function describe(report: RunReport): string {
  if (report.ringSetup === 'none') return 'blocking socket, send(2) loop';
  if (report.ringSetup) {
    const copied = report.notifications ? `, kernel reported ZC_COPIED in ${report.copiedNotifications} of ${report.notifications} notifications` : '';
    return `ring ${report.ringSetup}${copied}`;
  }
  const stats = report.stats;
  if (stats && stats.zcOpsSubmitted) {
    const zcBytes = (stats.bytesCopied ?? 0) + (stats.bytesZeroCopy ?? 0);
    const copied = zcBytes > 0 ? (100 * (stats.bytesCopied ?? 0)) / zcBytes : 0;
    return `${report.details}, kernel reported ZC_COPIED for ${copied.toFixed(0)}% of SEND_ZC bytes`;
  }
  return report.details ?? '';
}

export async function runSenderSuite(ctx: SuiteContext): Promise<Omit<SuiteResult, 'startedAt' | 'finishedAt' | 'machine' | 'mode'>> {
  const { plan } = ctx;
  const specs = competitors(ctx);
  const infos = new Map<string, CompetitorInfo>(specs.map((s) => [s.id, { id: s.id, label: s.label, status: 'ok', reason: null, details: null }]));
  for (const spec of specs) {
    if (ctx.only && !ctx.only.has(spec.id)) Object.assign(infos.get(spec.id)!, { status: 'skipped', reason: 'not selected (--only)' });
  }
  const cells: Cell[] = [];
  const notes: string[] = [];
  const sink = await startSink(ctx);
  notes.push(`Receiver: ${sink.kind}, pinned to CPU ${ctx.loadCpu ?? 'any'}; one connection per run.`);
  try {
    for (const chunk of plan.sender.chunks) {
      ctx.log(`  chunk ${formatSize(chunk)}`);
      const active = specs.filter((s) => infos.get(s.id)!.status === 'ok');
      const byId = new Map<string, Cell>();
      for (const spec of active) {
        const cell: Cell = { competitor: spec.id, group: 'tcp', size: chunk, connections: 1, samples: [], metrics: null, error: null };
        byId.set(spec.id, cell);
        cells.push(cell);
      }
      for (let round = 0; round < plan.rounds; round++) {
        const k = round % Math.max(1, active.length);
        for (const spec of [...active.slice(k), ...active.slice(0, k)]) {
          const info = infos.get(spec.id)!;
          const cell = byId.get(spec.id)!;
          if (info.status !== 'ok' || cell.error) continue;
          try {
            const { sample, report } = await runOnce(ctx, spec, sink.port, chunk, round);
            cell.samples.push(sample);
            info.details ??= describe(report);
          } catch (err) {
            if (err instanceof SkipError) {
              Object.assign(info, { status: 'skipped', reason: err.message });
              ctx.log(`    ${spec.id}: skipped: ${err.message}`);
            } else {
              cell.error = (err as Error).message;
              ctx.log(`    ${spec.id}: ${cell.error}`);
            }
          }
        }
        if (sink.child.hasExited) throw new Error(`sink exited: ${sink.child.tail()}`);
      }
      for (const cell of byId.values()) cell.metrics = cell.error ? null : summarize(cell.samples);
    }
  } finally {
    await sink.child.stop();
  }
  // Cells of competitors that turned out to be skipped hold no samples: drop them.
  const kept = cells.filter((cell) => infos.get(cell.competitor)!.status !== 'skipped');
  return {
    suite: 'sender',
    title: 'Raw sends over one TCP connection: core Sender vs socket.write vs C',
    settings: {
      rounds: plan.rounds,
      seconds: plan.sender.seconds,
      warmupSeconds: plan.sender.warmupSeconds,
      sizes: plan.sender.chunks,
      connections: [1],
      loadGenerator: null,
    },
    competitors: [...infos.values()],
    groups: [{ id: 'tcp', title: 'one loopback TCP connection' }],
    cells: kept,
    notes: [
      ...notes,
      'CPU is the sending process\'s own (getrusage, all threads) over its measured window; on loopback it includes the kernel\'s delivery into the receiving socket, which runs in the sender\'s context.',
    ],
  };
}
