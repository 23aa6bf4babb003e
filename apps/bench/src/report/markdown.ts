// Markdown for people: one table per chart group, medians with the min–max of the rounds.
import type { Cell, Metrics, Spread, SuiteResult, TargetResult } from '../results.js';
import { formatNumber, formatSize } from '../units.js';
import { chartFileName } from './charts.js';

function cellText(s: Spread | null | undefined): string {
  if (!s) return '—';
  if (s.min === s.max) return formatNumber(s.median);
  return `${formatNumber(s.median)} (${formatNumber(s.min)}–${formatNumber(s.max)})`;
}

function escape(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export const LOOPBACK_CAVEAT =
  'Loopback only. On loopback the kernel copies SEND_ZC data for local delivery (every notification reports ' +
  '`ZC_COPIED`), so these runs show the cost of the zcsend machinery and of each server\'s send path, not the ' +
  'savings zero-copy brings on a NIC that does scatter-gather DMA. They also run the load generator on the same ' +
  'machine: MB/s at 1 MiB and above is limited by the client, so compare CPU per GB (measured from the server ' +
  'process\'s own /proc/<pid>/stat) rather than MB/s there.';

function competitorTable(suite: SuiteResult): string[] {
  const lines = ['| competitor | status | what ran |', '|---|---|---|'];
  for (const c of suite.competitors) {
    const status = c.status === 'ok' ? 'measured' : `${c.status}: ${c.reason ?? ''}`;
    lines.push(`| ${escape(c.label)} | ${escape(status)} | ${escape(c.details ?? '')} |`);
  }
  return lines;
}

function groupTable(suite: SuiteResult, group: string): string[] {
  const http = suite.suite !== 'sender';
  const header = http
    ? '| size | competitor | req/s | MB/s | CPU-s per GB | MB per CPU-s | peak RSS MiB | errors |'
    : '| chunk | competitor | MB/s | CPU-s per GB | MB per CPU-s |';
  const lines = [header, header.replace(/[^|]+/g, '---')];
  const labels = new Map(suite.competitors.map((c) => [c.id, c.label]));
  const cells = suite.cells.filter((c) => c.group === group);
  const sizes = [...new Set(cells.map((c) => c.size))].sort((a, b) => a - b);
  for (const size of sizes) {
    for (const cell of cells.filter((c) => c.size === size)) {
      const label = escape(labels.get(cell.competitor) ?? cell.competitor);
      lines.push(http ? httpRow(size, label, cell) : senderRow(size, label, cell));
    }
  }
  return lines;
}

function httpRow(size: number, label: string, cell: Cell): string {
  const m: Metrics | null = cell.metrics;
  if (!m) return `| ${formatSize(size)} | ${label} | failed: ${escape(cell.error ?? 'no data')} | | | | | |`;
  return `| ${formatSize(size)} | ${label} | ${cellText(m.reqPerSec)} | ${cellText(m.mbPerSec)} | ${cellText(m.cpuSecondsPerGB)} | ${cellText(m.mbPerCpuSecond)} | ${cellText(m.peakRssMiB)} | ${m.errors} |`;
}

function senderRow(size: number, label: string, cell: Cell): string {
  const m = cell.metrics;
  if (!m) return `| ${formatSize(size)} | ${label} | failed: ${escape(cell.error ?? 'no data')} | | |`;
  return `| ${formatSize(size)} | ${label} | ${cellText(m.mbPerSec)} | ${cellText(m.cpuSecondsPerGB)} | ${cellText(m.mbPerCpuSecond)} |`;
}

/** Pairs whose ratio is the addon's overhead over the same loop in C. */
const SENDER_PAIRS: ReadonlyArray<[string, string, string]> = [
  ['zcsend-zc', 'c-send-zc', 'SEND_ZC'],
  ['zcsend-adaptive', 'c-ring-send', 'ring send'],
  ['socket-write', 'c-send', 'socket.write vs send(2)'],
];

function ratioText(a: Spread | null | undefined, b: Spread | null | undefined): string {
  return a && b && b.median > 0 ? `${(a.median / b.median).toFixed(2)}×` : '—';
}

/** Node over C at each chunk size: MB/s (higher is better) and CPU per GB (lower is better). */
function senderOverhead(suite: SuiteResult): string[] {
  const lines = ['| chunk | pair | MB/s, Node ÷ C | CPU-s per GB, Node ÷ C |', '|---|---|---|---|'];
  const find = (id: string, size: number) => suite.cells.find((c) => c.competitor === id && c.size === size)?.metrics;
  for (const size of [...new Set(suite.cells.map((c) => c.size))].sort((a, b) => a - b)) {
    for (const [node, c, name] of SENDER_PAIRS) {
      const a = find(node, size);
      const b = find(c, size);
      if (!a || !b) continue;
      lines.push(`| ${formatSize(size)} | ${name} | ${ratioText(a.mbPerSec, b.mbPerSec)} | ${ratioText(a.cpuSecondsPerGB, b.cpuSecondsPerGB)} |`);
    }
  }
  return lines.length > 2 ? ['### Node over C, same loop (the addon\'s overhead)', '', ...lines, ''] : [];
}

function warmupText(s: SuiteResult['settings']): string {
  const base = `${s.warmupSeconds} s of warm-up`;
  if (!s.warmupResponses || s.warmupMaxSeconds === undefined || s.warmupMaxSeconds <= s.warmupSeconds) return base;
  return `${base}, run on to ${s.warmupResponses} responses (at most ${s.warmupMaxSeconds} s)`;
}

export function suiteMarkdown(suite: SuiteResult): string {
  const s = suite.settings;
  const m = suite.machine;
  const lines: string[] = [
    `## ${suite.title}`,
    '',
    `Suite \`${suite.suite}\`, ${suite.mode} run, ${suite.startedAt}. ${s.rounds} round(s) of ${s.seconds} s per competitor and point, ` +
      `interleaved, after ${warmupText(s)}${s.loadGenerator ? `; load: ${s.loadGenerator}` : ''}.`,
    `Machine: Linux ${m.kernel}, ${m.cpus} CPUs (${m.cpuModel}), Node ${m.node}; ` +
      (m.pinned ? `server pinned to CPU ${m.serverCpu}, load generator to CPU ${m.loadCpu}.` : 'not pinned (taskset missing or one CPU).'),
    `Cells: median (min–max over rounds). MB = 10^6 bytes, GB = 10^9 bytes; CPU is the ${suite.suite === 'sender' ? 'sending process' : 'server process tree'}'s own, all threads.`,
    '',
    ...competitorTable(suite),
    '',
  ];
  for (const group of suite.groups) {
    if (!suite.cells.some((c) => c.group === group.id)) continue;
    lines.push(`### ${group.title}`, '');
    lines.push(`![throughput](${chartFileName(suite.suite, group.id, 'throughput')}) ![CPU per GB](${chartFileName(suite.suite, group.id, 'cpu')})`, '');
    lines.push(...groupTable(suite, group.id), '');
  }
  if (suite.suite === 'sender') lines.push(...senderOverhead(suite));
  if (suite.notes.length) lines.push('Notes:', '', ...suite.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

export function targetsMarkdown(targets: readonly TargetResult[]): string {
  const lines = ['| status | target | point | measured | required | detail |', '|---|---|---|---|---|---|'];
  for (const t of targets) {
    lines.push(`| ${t.status} | ${escape(t.target)} | ${t.point} | ${t.measuredText} | ${t.required} | ${escape(t.note)} |`);
  }
  return lines.join('\n');
}

export function summaryMarkdown(suites: readonly SuiteResult[], targets: readonly TargetResult[], command: string): string {
  const pass = targets.filter((t) => t.status === 'PASS').length;
  const fail = targets.filter((t) => t.status === 'FAIL').length;
  const na = targets.filter((t) => t.status === 'N/A').length;
  return [
    '# zcsend benchmarks',
    '',
    `Reproduce: \`${command}\``,
    '',
    LOOPBACK_CAVEAT,
    '',
    `## Targets (${pass} pass, ${fail} fail, ${na} not measured)`,
    '',
    targetsMarkdown(targets),
    '',
    ...suites.map((s) => suiteMarkdown(s)),
  ].join('\n');
}

/** The plain-text verdict block printed at the end of a run. */
export function targetsText(targets: readonly TargetResult[]): string {
  const width = Math.max(...targets.map((t) => t.target.length + t.point.length + 3));
  return targets
    .map((t) => `${t.status.padEnd(4)}  ${`${t.target} @ ${t.point}`.padEnd(width)}  ${t.measuredText.padStart(8)}  (${t.required})  ${t.note}`)
    .join('\n');
}
