// Runs every suite in smoke mode through the real CLI (dist/cli.js: `pnpm build` first) and checks
// the outputs: JSON with positive numbers, Markdown tables, SVG charts with every competitor.
// It proves the harness works end to end; it asserts nothing about speed.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SuiteResult, TargetResult } from '../src/results.js';

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(PACKAGE, 'dist', 'cli.js');
const MODE = process.env.ZCSEND_DISABLE === '1' ? 'copy' : 'uring';
const REQUIRE_URING = process.env.ZCSEND_REQUIRE_URING === '1';

/** Competitors that need nothing but Node, the C compiler and the npm packages of this package. */
const ALWAYS_MEASURED: Record<string, string[]> = {
  sender: ['socket-write'],
  files: ['node-stream', 'node-buffer', 'sirv-cli', 'http-server', 'fastify-static'],
  fastify: ['fastify'],
};

let out: string;
let runDir: string;
let stdout = '';
let exitCode: number | null = null;

function runCli(args: string[], timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
    // SIGTERM lets the CLI stop its servers; the test's own bound is below vitest's timeout.
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function readSuite(name: string): SuiteResult {
  return JSON.parse(readFileSync(path.join(runDir, `${name}.json`), 'utf8')) as SuiteResult;
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: build the package first (pnpm build)`);
  out = mkdtempSync(path.join(os.tmpdir(), 'zcsend-bench-test-'));
  exitCode = await runCli(['--smoke', '--no-install', '--out', out], 100_000);
  const runs = existsSync(out) ? readdirSync(out).filter((d) => d !== 'latest') : [];
  runDir = path.join(out, runs[0] ?? 'missing');
}, 110_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('smoke run of every suite', () => {
  it('exits 0 and prints the target verdicts', () => {
    expect(exitCode, stdout.slice(-3000)).toBe(0);
    expect(stdout).toMatch(/Targets \(TARGETS\.md\)/);
    expect(stdout).toMatch(/^(PASS|FAIL|N\/A) +zcserve peak RSS/m);
  });

  it('writes one run directory and a latest/ copy with every file', () => {
    const files = readdirSync(runDir);
    for (const suite of ['sender', 'files', 'fastify']) {
      expect(files).toContain(`${suite}.json`);
      expect(files).toContain(`${suite}.md`);
      expect(files.filter((f) => f.startsWith(`${suite}-`) && f.endsWith('-throughput.svg')).length).toBeGreaterThan(0);
      expect(files.filter((f) => f.startsWith(`${suite}-`) && f.endsWith('-cpu.svg')).length).toBeGreaterThan(0);
    }
    expect(files).toContain('targets.json');
    expect(files).toContain('README.md');
    expect(readdirSync(path.join(out, 'latest')).sort()).toEqual(files.sort());
  });

  for (const suite of ['sender', 'files', 'fastify'] as const) {
    it(`${suite}: JSON holds positive medians for every measured competitor`, () => {
      const result = readSuite(suite);
      expect(result.suite).toBe(suite);
      expect(result.mode).toBe('smoke');
      const failed = result.competitors.filter((c) => c.status === 'failed');
      expect(failed, JSON.stringify(failed)).toEqual([]);
      for (const id of ALWAYS_MEASURED[suite]!) {
        expect(result.competitors.find((c) => c.id === id)?.status, id).toBe('ok');
      }
      const measured = result.competitors.filter((c) => c.status === 'ok');
      // CPU comes in 10 ms clock ticks: a server starved by other work on this shared machine may
      // register none in a 0.5 s smoke window (then the CPU rates are null, never 0 or Infinity).
      // The plumbing must show in at least one cell per suite.
      const withCpu = result.cells.filter((c) => c.metrics?.cpuSecondsPerGB);
      expect(withCpu.length).toBeGreaterThan(0);
      for (const competitor of measured) {
        const cells = result.cells.filter((c) => c.competitor === competitor.id);
        expect(cells.length, competitor.id).toBeGreaterThan(0);
        for (const cell of cells) {
          expect(cell.error, competitor.id).toBeNull();
          const m = cell.metrics!;
          expect(m.mbPerSec.median, competitor.id).toBeGreaterThan(0);
          if (m.cpuSecondsPerGB) {
            expect(m.cpuSecondsPerGB.median, competitor.id).toBeGreaterThan(0);
            expect(m.mbPerCpuSecond?.median, competitor.id).toBeGreaterThan(0);
            expect(Number.isFinite(m.mbPerCpuSecond!.median)).toBe(true);
          } else {
            expect(m.mbPerCpuSecond, competitor.id).toBeNull();
          }
          expect(m.mbPerSec.min).toBeLessThanOrEqual(m.mbPerSec.max);
          if (suite !== 'sender') {
            expect(m.reqPerSec?.median, competitor.id).toBeGreaterThan(0);
            expect(m.peakRssMiB?.median, competitor.id).toBeGreaterThan(0);
          }
          for (const sample of cell.samples) {
            expect(sample.bytes).toBeGreaterThan(0);
            expect(sample.seconds).toBeGreaterThan(0);
            expect(sample.cpuSeconds).toBeGreaterThanOrEqual(0);
          }
        }
      }
    });

    it(`${suite}: Markdown has a table row per measured cell`, () => {
      const result = readSuite(suite);
      const md = readFileSync(path.join(runDir, `${suite}.md`), 'utf8');
      expect(md).toContain(`## ${result.title}`);
      expect(md).toMatch(/^\| (size|chunk) \| competitor \|/m);
      for (const cell of result.cells) {
        const label = result.competitors.find((c) => c.id === cell.competitor)!.label.replace(/\|/g, '\\|');
        expect(md).toContain(`| ${label} |`);
      }
    });

    it(`${suite}: SVG charts are complete documents naming every measured competitor`, () => {
      const result = readSuite(suite);
      const charts = readdirSync(runDir).filter((f) => f.startsWith(`${suite}-`) && f.endsWith('.svg'));
      for (const chart of charts) {
        const svg = readFileSync(path.join(runDir, chart), 'utf8');
        expect(svg.startsWith('<svg'), chart).toBe(true);
        expect(svg.trimEnd().endsWith('</svg>'), chart).toBe(true);
        expect(svg).toMatch(/class="mark-line role-mark/);
        const group = chart.slice(suite.length + 1).replace(/-(throughput|cpu)\.svg$/, '');
        for (const cell of result.cells.filter((c) => c.group === group && c.metrics)) {
          const label = result.competitors.find((c) => c.id === cell.competitor)!.label;
          expect(svg, `${chart} legend`).toContain(label.replace(/&/g, '&amp;'));
        }
      }
    });
  }

  it('core Sender runs on io_uring when io_uring is required', () => {
    const sender = readSuite('sender');
    const zc = sender.competitors.find((c) => c.id === 'zcsend-zc')!;
    if (MODE === 'copy') {
      expect(zc.status).toBe('skipped');
      expect(zc.reason).toMatch(/no ring/);
    } else if (REQUIRE_URING) {
      expect(zc.status, zc.reason ?? '').toBe('ok');
      expect(zc.details).toMatch(/backend io_uring/);
    }
  });

  it('targets.json lists every target with a verdict', () => {
    const targets = JSON.parse(readFileSync(path.join(runDir, 'targets.json'), 'utf8')) as TargetResult[];
    expect(targets.length).toBeGreaterThanOrEqual(20);
    for (const t of targets) {
      expect(['PASS', 'FAIL', 'N/A']).toContain(t.status);
      if (t.status !== 'N/A') expect(t.measured).toBeGreaterThan(0);
      else expect(t.note.length).toBeGreaterThan(0);
    }
  });
});
