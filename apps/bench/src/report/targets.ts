// TARGETS.md as code: each target is a ratio of medians within one suite run (absolute numbers
// swing up to 2× between runs here, ratios within a run much less).
import type { Metrics, SuiteName, SuiteResult, TargetResult } from '../results.js';
import { formatSize, KiB, MiB } from '../units.js';
import { ZCSERVE_CACHE_BYTES } from '../suites/files.js';

type MetricName = 'mbPerSec' | 'reqPerSec' | 'mbPerCpuSecond';

const METRIC_TEXT: Record<MetricName, string> = {
  mbPerSec: 'MB/s',
  reqPerSec: 'req/s',
  mbPerCpuSecond: 'MB per server CPU-s',
};

const NODE_STATIC_SERVERS = ['sirv-cli', 'http-server', 'fastify-static', 'node-stream'];

function metrics(suite: SuiteResult | undefined, competitor: string, group: string, size: number): Metrics | null {
  return suite?.cells.find((c) => c.competitor === competitor && c.group === group && c.size === size)?.metrics ?? null;
}

function value(m: Metrics | null, metric: MetricName): number | null {
  return m?.[metric]?.median ?? null;
}

function labelOf(suite: SuiteResult | undefined, id: string): string {
  return suite?.competitors.find((c) => c.id === id)?.label ?? id;
}

/** Why a side has no number: skipped/failed competitor, point not in this run, suite not run. */
function missingReason(suite: SuiteResult | undefined, name: SuiteName, ids: string[], group: string, size: number): string {
  if (!suite) return `suite ${name} not run`;
  for (const id of ids) {
    const info = suite.competitors.find((c) => c.id === id);
    if (info && info.status !== 'ok') return `${id} ${info.status}: ${info.reason ?? ''}`.trim();
    const cell = suite.cells.find((c) => c.competitor === id && c.group === group && c.size === size);
    if (!cell) return `${formatSize(size)} (${group}) not measured in this ${suite.mode} run`;
    if (cell.error) return `${id} failed: ${cell.error}`;
  }
  return 'no CPU time or traffic registered';
}

interface RatioSpec {
  suiteName: SuiteName;
  target: string;
  ours: string;
  theirs: string | string[];
  group: string;
  size: number;
  metric: MetricName;
  required: number;
  pointText: string;
  /** A competitor identical to `theirs`: its ratio to them is printed as this run's noise floor. */
  control?: string;
}

function ratio(suites: Map<SuiteName, SuiteResult>, spec: RatioSpec): TargetResult {
  const suite = suites.get(spec.suiteName);
  const ours = value(metrics(suite, spec.ours, spec.group, spec.size), spec.metric);
  // Against a set of competitors, the best of them (highest median) is the one to beat.
  const candidates = (Array.isArray(spec.theirs) ? spec.theirs : [spec.theirs])
    .map((id) => ({ id, v: value(metrics(suite, id, spec.group, spec.size), spec.metric) }))
    .filter((c): c is { id: string; v: number } => c.v !== null && c.v > 0);
  const best = candidates.sort((a, b) => b.v - a.v)[0];
  const base: Omit<TargetResult, 'measured' | 'measuredText' | 'status' | 'note'> = {
    target: spec.target,
    point: spec.pointText,
    suite: spec.suiteName,
    required: `≥ ${spec.required}×`,
  };
  if (ours === null || !best) {
    const ids = [spec.ours, ...(Array.isArray(spec.theirs) ? spec.theirs : [spec.theirs])];
    return { ...base, measured: null, measuredText: '—', status: 'N/A', note: missingReason(suite, spec.suiteName, ids, spec.group, spec.size) };
  }
  const r = ours / best.v;
  const fmt = (v: number) => v.toFixed(v >= 100 ? 0 : 1);
  return {
    ...base,
    measured: r,
    measuredText: `${r.toFixed(2)}×`,
    status: r >= spec.required ? 'PASS' : 'FAIL',
    note: `${fmt(ours)} vs ${fmt(best.v)} ${METRIC_TEXT[spec.metric]} (${labelOf(suite, best.id)})${controlText(suite, spec, best.v)}`,
  };
}

/** "; A/A control 0.97×" when the suite measured a control identical to the baseline. */
function controlText(suite: SuiteResult | undefined, spec: RatioSpec, baseline: number): string {
  if (!spec.control) return '';
  const control = value(metrics(suite, spec.control, spec.group, spec.size), spec.metric);
  return control === null ? '' : `; A/A control ${(control / baseline).toFixed(2)}×`;
}

export function evaluateTargets(results: readonly SuiteResult[]): TargetResult[] {
  const suites = new Map(results.map((r) => [r.suite, r] as const));
  const out: TargetResult[] = [];
  const c16 = 'c16';

  for (const size of [1 * MiB, 16 * MiB]) {
    out.push(ratio(suites, { suiteName: 'files', target: 'zcserve vs nginx (sendfile on), MB per server CPU-s', ours: 'zcserve', theirs: 'nginx-sendfile', group: c16, size, metric: 'mbPerCpuSecond', required: 1.0, pointText: `${formatSize(size)} files, 16 conn` }));
  }
  for (const size of [4 * KiB, 64 * KiB]) {
    out.push(ratio(suites, { suiteName: 'files', target: 'zcserve vs nginx (sendfile on), req/s', ours: 'zcserve', theirs: 'nginx-sendfile', group: c16, size, metric: 'reqPerSec', required: 1.0, pointText: `${formatSize(size)} files, 16 conn` }));
  }
  for (const size of [64 * KiB, 1 * MiB, 16 * MiB]) {
    out.push(ratio(suites, { suiteName: 'files', target: 'zcserve vs best Node static server, MB per server CPU-s', ours: 'zcserve', theirs: NODE_STATIC_SERVERS, group: c16, size, metric: 'mbPerCpuSecond', required: 3, pointText: `${formatSize(size)} files, 16 conn` }));
  }
  for (const size of [1 * MiB, 16 * MiB]) {
    out.push(ratio(suites, { suiteName: 'fastify', target: 'Fastify + zcSend + @fastify/static vs without zcSend, MB per server CPU-s', ours: 'fastify-zcsend', theirs: 'fastify', group: 'static', size, metric: 'mbPerCpuSecond', required: 10, pointText: `${formatSize(size)} files`, control: 'fastify-control' }));
  }
  for (const size of [64 * KiB, 1 * MiB, 16 * MiB]) {
    out.push(ratio(suites, { suiteName: 'fastify', target: 'Fastify + zcSend vs plain Fastify, Buffer replies, MB/s', ours: 'fastify-zcsend', theirs: 'fastify', group: 'buffer', size, metric: 'mbPerSec', required: 1.0, pointText: `${formatSize(size)} Buffer`, control: 'fastify-control' }));
    out.push(ratio(suites, { suiteName: 'fastify', target: 'Fastify + zcSend vs plain Fastify, Buffer replies, MB per server CPU-s', ours: 'fastify-zcsend', theirs: 'fastify', group: 'buffer', size, metric: 'mbPerCpuSecond', required: 1.0, pointText: `${formatSize(size)} Buffer`, control: 'fastify-control' }));
  }
  out.push(ratio(suites, { suiteName: 'fastify', target: 'Fastify + zcSend vs plain Fastify, req/s', ours: 'fastify-zcsend', theirs: 'fastify', group: 'buffer', size: 1 * KiB, metric: 'reqPerSec', required: 0.98, pointText: '1 KiB Buffer', control: 'fastify-control' }));
  for (const size of [64 * KiB, 1 * MiB, 4 * MiB]) {
    out.push(ratio(suites, { suiteName: 'sender', target: 'core Sender vs C liburing, SEND_ZC, MB/s', ours: 'zcsend-zc', theirs: 'c-send-zc', group: 'tcp', size, metric: 'mbPerSec', required: 0.9, pointText: `${formatSize(size)} chunks` }));
    out.push(ratio(suites, { suiteName: 'sender', target: 'core Sender vs C liburing, ring send (adaptive on loopback), MB/s', ours: 'zcsend-adaptive', theirs: 'c-ring-send', group: 'tcp', size, metric: 'mbPerSec', required: 0.9, pointText: `${formatSize(size)} chunks` }));
  }
  out.push(memoryTarget(suites.get('files')));
  return out;
}

/** zcserve's peak RSS (highest round) under 256 connections fetching 16 MiB files ≤ cache + 64 MiB. */
function memoryTarget(suite: SuiteResult | undefined): TargetResult {
  const limit = ZCSERVE_CACHE_BYTES / MiB + 64;
  const base = {
    target: 'zcserve peak RSS ≤ cache size + 64 MiB',
    point: '16 MiB files, 256 conn',
    suite: 'files' as const,
    required: `≤ ${limit} MiB`,
  };
  const peak = metrics(suite, 'zcserve', 'c256', 16 * MiB)?.peakRssMiB?.max ?? null;
  if (peak === null) {
    return { ...base, measured: null, measuredText: '—', status: 'N/A', note: missingReason(suite, 'files', ['zcserve'], 'c256', 16 * MiB) };
  }
  return {
    ...base,
    measured: peak,
    measuredText: `${peak.toFixed(0)} MiB`,
    status: peak <= limit ? 'PASS' : 'FAIL',
    note: `cache ${ZCSERVE_CACHE_BYTES / MiB} MiB; VmHWM of the server process, highest round`,
  };
}
