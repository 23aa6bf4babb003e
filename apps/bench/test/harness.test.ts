// The harness's parts on their own: statistics, /proc readings, target verdicts, charts, the
// autocannon fallback, the C program's send loop.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternBody, sha256 } from '../src/body.js';
import { cpuSecondsBetween, cpuSnapshot, peakRssBytes, processTree, resetPeakRss } from '../src/proc.js';
import { renderChart } from '../src/report/charts.js';
import { evaluateTargets } from '../src/report/targets.js';
import type { Cell, CompetitorInfo, SuiteResult } from '../src/results.js';
import { median, summarize } from '../src/stats.js';
import { compileC } from '../src/tools.js';
import { planFor, withOverrides } from '../src/plan.js';
import { KiB, MiB, parseSize } from '../src/units.js';

/** Under ZCSEND_DISABLE=1 the C program's ring modes are not run (the mode promises no io_uring). */
const MODE_COPY = process.env.ZCSEND_DISABLE === '1';

describe('statistics', () => {
  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('summarises per-sample rates: median and range of ratios', () => {
    const m = summarize([
      { round: 0, seconds: 1, bytes: 1e9, requests: 1000, cpuSeconds: 0.5, peakRssBytes: 100 * MiB, errors: 0 },
      { round: 1, seconds: 2, bytes: 1e9, requests: 1000, cpuSeconds: 1, peakRssBytes: 120 * MiB, errors: 1 },
      { round: 2, seconds: 1, bytes: 3e9, requests: 3000, cpuSeconds: 1, peakRssBytes: 110 * MiB, errors: 0 },
    ])!;
    expect(m.mbPerSec).toEqual({ median: 1000, min: 500, max: 3000 });
    expect(m.reqPerSec).toEqual({ median: 1000, min: 500, max: 3000 });
    expect(m.cpuSecondsPerGB).toEqual({ median: 0.5, min: 1 / 3, max: 1 });
    expect(m.mbPerCpuSecond).toEqual({ median: 2000, min: 1000, max: 3000 });
    expect(m.peakRssMiB).toEqual({ median: 110, min: 100, max: 120 });
    expect(m.errors).toBe(1);
  });

  it('leaves CPU rates out when no CPU time registered, and gives null without traffic', () => {
    const m = summarize([{ round: 0, seconds: 1, bytes: 1e6, requests: null, cpuSeconds: 0, peakRssBytes: null, errors: 0 }])!;
    expect(m.cpuSecondsPerGB).toBeNull();
    expect(m.mbPerCpuSecond).toBeNull();
    expect(m.reqPerSec).toBeNull();
    expect(summarize([{ round: 0, seconds: 1, bytes: 0, requests: 0, cpuSeconds: 1, peakRssBytes: null, errors: 3 }])).toBeNull();
  });
});

describe('/proc readings', () => {
  it('counts CPU time of a busy child process and finds it in the tree', async () => {
    const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 400; while (Date.now() < end); setTimeout(() => {}, 5000)']);
    try {
      const before = cpuSnapshot(child.pid!);
      await new Promise((r) => setTimeout(r, 700));
      const after = cpuSnapshot(child.pid!);
      expect(processTree(process.pid)).toContain(child.pid);
      // At least most of the 400 ms busy loop (the child may have started it before `before`).
      expect(cpuSecondsBetween(before, after)).toBeGreaterThan(0.1);
      expect(peakRssBytes(child.pid!)).toBeGreaterThan(1 * MiB);
      expect(resetPeakRss(child.pid!)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('returns nothing for a process that does not exist', () => {
    expect(cpuSnapshot(2 ** 22 + 12345).size).toBe(0);
    expect(peakRssBytes(2 ** 22 + 12345)).toBeNull();
  });
});

function competitor(id: string, status: CompetitorInfo['status'] = 'ok'): CompetitorInfo {
  return { id, label: id, status, reason: status === 'ok' ? null : 'because', details: null };
}

function cell(competitorId: string, group: string, size: number, mbPerCpuSecond: number, extra: Partial<{ reqPerSec: number; mbPerSec: number; rss: number }> = {}): Cell {
  const s = (v: number) => ({ median: v, min: v, max: v });
  return {
    competitor: competitorId,
    group,
    size,
    connections: 16,
    samples: [],
    error: null,
    metrics: {
      mbPerSec: s(extra.mbPerSec ?? 100),
      reqPerSec: extra.reqPerSec === undefined ? null : s(extra.reqPerSec),
      cpuSecondsPerGB: s(1000 / mbPerCpuSecond),
      mbPerCpuSecond: s(mbPerCpuSecond),
      peakRssMiB: extra.rss === undefined ? null : s(extra.rss),
      errors: 0,
    },
  };
}

function suite(name: SuiteResult['suite'], competitors: CompetitorInfo[], cells: Cell[]): SuiteResult {
  return {
    suite: name,
    title: name,
    mode: 'full',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:10:00.000Z',
    machine: { kernel: '6.18', cpus: 2, cpuModel: 'x', node: 'v20', serverCpu: 0, loadCpu: 1, pinned: true },
    settings: { rounds: 3, seconds: 2, warmupSeconds: 0.5, sizes: [], connections: [16], loadGenerator: 'wrk' },
    competitors,
    groups: [{ id: 'c16', title: '16 connections' }, { id: 'c256', title: '256 connections' }],
    cells,
    notes: [],
  };
}

describe('size lists', () => {
  it('parses k/KiB/m/MiB suffixes and byte counts, and refuses the rest', () => {
    expect(['4k', '64KiB', '1m', '16MiB', '1000'].map(parseSize)).toEqual([4 * KiB, 64 * KiB, MiB, 16 * MiB, 1000]);
    expect(['', '1g', '-1k', '0', '1.5m', 'k'].map(parseSize)).toEqual([null, null, null, null, null, null]);
  });

  it('a --sizes override replaces every suite grid', () => {
    const plan = withOverrides(planFor('quick'), { sizes: [KiB, MiB] });
    expect([plan.sender.chunks, plan.files.sizes, plan.fastify.sizes]).toEqual([[KiB, MiB], [KiB, MiB], [KiB, MiB]]);
    expect(planFor('quick').files.sizes).toHaveLength(4);
  });
});

describe('target verdicts', () => {
  const files = suite(
    'files',
    [competitor('zcserve'), competitor('nginx-sendfile'), competitor('sirv-cli'), competitor('http-server'), competitor('fastify-static', 'skipped'), competitor('node-stream')],
    [
      cell('zcserve', 'c16', 1 * MiB, 3300),
      cell('nginx-sendfile', 'c16', 1 * MiB, 3000),
      cell('zcserve', 'c16', 16 * MiB, 5000),
      cell('nginx-sendfile', 'c16', 16 * MiB, 5500),
      cell('zcserve', 'c16', 64 * KiB, 2000, { reqPerSec: 9000 }),
      cell('nginx-sendfile', 'c16', 64 * KiB, 2700, { reqPerSec: 10000 }),
      cell('sirv-cli', 'c16', 64 * KiB, 520),
      cell('http-server', 'c16', 64 * KiB, 330),
      cell('node-stream', 'c16', 64 * KiB, 650),
      cell('zcserve', 'c256', 16 * MiB, 5000, { rss: 300 }),
    ],
  );
  const targets = evaluateTargets([files]);
  const find = (target: RegExp, point: string) => targets.find((t) => target.test(t.target) && t.point.startsWith(point))!;

  it('passes and fails on the ratio of medians', () => {
    const oneMiB = find(/nginx.*MB per server CPU-s/, '1 MiB');
    expect(oneMiB.status).toBe('PASS');
    expect(oneMiB.measured).toBeCloseTo(1.1);
    expect(find(/nginx.*MB per server CPU-s/, '16 MiB').status).toBe('FAIL');
    expect(find(/nginx.*req\/s/, '64 KiB').measured).toBeCloseTo(0.9);
  });

  it('compares against the best of the Node static servers that ran', () => {
    const t = find(/best Node static/, '64 KiB');
    expect(t.measured).toBeCloseTo(2000 / 650);
    expect(t.status).toBe('PASS');
    expect(t.note).toContain('node-stream');
  });

  it('says why a target could not be measured', () => {
    expect(find(/nginx.*req\/s/, '4 KiB').status).toBe('N/A');
    expect(find(/nginx.*req\/s/, '4 KiB').note).toMatch(/not measured/);
    expect(find(/Fastify \+ zcSend vs plain Fastify, req\/s/, '1 KiB').note).toMatch(/suite fastify not run/);
  });

  it('prints the A/A control ratio beside the Fastify targets', () => {
    const fastify = suite(
      'fastify',
      [competitor('fastify'), competitor('fastify-control'), competitor('fastify-zcsend')],
      [cell('fastify', 'buffer', 1 * MiB, 4000), cell('fastify-control', 'buffer', 1 * MiB, 3600), cell('fastify-zcsend', 'buffer', 1 * MiB, 3800)],
    );
    const t = evaluateTargets([fastify]).find((x) => /Buffer replies, MB per server CPU-s/.test(x.target) && x.point.startsWith('1 MiB'))!;
    expect(t.status).toBe('FAIL');
    expect(t.measured).toBeCloseTo(0.95);
    expect(t.note).toMatch(/A\/A control 0\.90×$/);
  });

  it('checks peak RSS against the cache size plus 64 MiB', () => {
    const t = targets.find((x) => /peak RSS/.test(x.target))!;
    expect(t.status).toBe('PASS');
    expect(t.measuredText).toBe('300 MiB');
  });
});

describe('charts', () => {
  it('renders an SVG with one line per competitor from the JSON alone', async () => {
    const result = suite('files', [competitor('a'), competitor('b')], [cell('a', 'c16', 4 * KiB, 100), cell('a', 'c16', 1 * MiB, 2000), cell('b', 'c16', 4 * KiB, 200), cell('b', 'c16', 1 * MiB, 3000)]);
    for (const kind of ['throughput', 'cpu'] as const) {
      const svg = await renderChart(result, 'c16', kind);
      expect(svg.startsWith('<svg')).toBe(true);
      // Vega draws a colour-encoded line as one line mark per series.
      expect(svg.match(/class="mark-line role-mark/g)?.length).toBe(2);
      expect(svg.match(/class="mark-rule role-mark/g)?.length).toBe(1);
      expect(svg).toContain('4 KiB');
      expect(svg).toContain('1 MiB');
    }
  });
});

describe('bodies', () => {
  it('are deterministic per size and differ between sizes', () => {
    expect(sha256(patternBody(4099))).toBe(sha256(patternBody(4099)));
    expect(patternBody(4099).subarray(0, 4096).equals(patternBody(4096))).toBe(false);
    expect(patternBody(4099).length).toBe(4099);
  });
});

describe('autocannon fallback', () => {
  let server: http.Server;
  let url: string;
  const body = patternBody(8 * KiB);
  beforeAll(async () => {
    server = http.createServer((_req, res) => res.end(body)).listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => server.close());

  it('reports requests and bytes like wrk does', async () => {
    const dist = new URL('../dist/load/autocannon.js', import.meta.url);
    if (!existsSync(dist)) throw new Error('dist missing: build the package first (pnpm build)');
    const { Autocannon } = (await import(dist.href)) as typeof import('../src/load/autocannon.js');
    const result = await new Autocannon(null).run(url, 4, 0.5);
    expect(result.requests).toBeGreaterThan(0);
    expect(result.bytes).toBeGreaterThan(result.requests * body.length);
    expect(result.errors).toBe(0);
    expect(result.seconds).toBeGreaterThan(0.3);
  });
});

describe('C reference program', () => {
  it('compiles against liburing and sends through every mode', async () => {
    const c = await compileC();
    expect(c.path, c.reason ?? '').not.toBeNull();
    const sink = spawn(c.path!, ['sink']);
    try {
      const [line] = (await once(sink.stdout, 'data')) as [Buffer];
      const port = /listening (\d+)/.exec(line.toString())![1]!;
      const modes = MODE_COPY ? ['send'] : ['zc', 'ring', 'send'];
      for (const mode of modes) {
        const run = spawnSync(c.path!, ['send', '127.0.0.1', port, mode, String(64 * KiB), '0.2', '0.05'], { encoding: 'utf8', timeout: 20_000 });
        expect(run.status, run.stderr).toBe(0);
        const report = JSON.parse(run.stdout) as { bytes: number; seconds: number; cpuSeconds: number; notifications: number; copiedNotifications: number };
        expect(report.bytes).toBeGreaterThan(0);
        expect(report.bytes % (64 * KiB)).toBe(0);
        expect(report.seconds).toBeGreaterThanOrEqual(0.2);
        expect(report.cpuSeconds).toBeGreaterThan(0);
        // Loopback: the kernel copies for local delivery, and says so in every notification.
        if (mode === 'zc') {
          expect(report.notifications).toBeGreaterThan(0);
          expect(report.copiedNotifications).toBe(report.notifications);
        }
      }
    } finally {
      sink.kill('SIGKILL');
    }
  });
});
