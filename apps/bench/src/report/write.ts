// Files of a run: <out>/<run id>/ holds each suite's JSON, Markdown and SVG charts plus the target
// verdicts; <out>/latest/ holds the newest result of every suite (what the root README shows),
// with the targets recomputed from those.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { SUITES, type SuiteName, type SuiteResult, type TargetResult } from '../results.js';
import { renderSuiteCharts } from './charts.js';
import { suiteMarkdown, summaryMarkdown } from './markdown.js';
import { evaluateTargets } from './targets.js';

export interface WrittenRun {
  runDir: string;
  latestDir: string;
  /** Targets from this run's suites. */
  targets: TargetResult[];
  files: string[];
}

async function writeSuite(dir: string, suite: SuiteResult): Promise<string[]> {
  const written: string[] = [];
  const put = (name: string, text: string) => {
    writeFileSync(path.join(dir, name), text);
    written.push(path.join(dir, name));
  };
  put(`${suite.suite}.json`, `${JSON.stringify(suite, null, 2)}\n`);
  put(`${suite.suite}.md`, `${suiteMarkdown(suite)}\n`);
  for (const [name, svg] of await renderSuiteCharts(suite)) put(name, svg);
  return written;
}

function suiteFiles(dir: string, suite: SuiteName): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f === `${suite}.json` || f === `${suite}.md` || (f.startsWith(`${suite}-`) && f.endsWith('.svg')));
}

function readSuites(dir: string): SuiteResult[] {
  const out: SuiteResult[] = [];
  for (const name of SUITES) {
    const file = path.join(dir, `${name}.json`);
    if (existsSync(file)) out.push(JSON.parse(readFileSync(file, 'utf8')) as SuiteResult);
  }
  return out;
}

/** The command that reproduces a set of suite results (from the repository root). */
export function reproduceCommand(suites: readonly SuiteResult[]): string {
  const modes = new Set(suites.map((s) => s.mode));
  const flag = modes.size === 1 && modes.has('quick') ? ' --quick' : modes.size === 1 && modes.has('smoke') ? ' --smoke' : '';
  const names = suites.length === SUITES.length ? '' : ` ${suites.map((s) => s.suite).join(' ')}`;
  if (modes.size > 1) return `pnpm bench <suite> (modes differ: ${suites.map((s) => `${s.suite} ${s.mode}`).join(', ')})`;
  return `pnpm bench${names}${flag}`;
}

export async function writeRun(outDir: string, runId: string, suites: readonly SuiteResult[]): Promise<WrittenRun> {
  const runDir = path.join(outDir, runId);
  const latestDir = path.join(outDir, 'latest');
  mkdirSync(runDir, { recursive: true });
  mkdirSync(latestDir, { recursive: true });
  const files: string[] = [];
  for (const suite of suites) files.push(...(await writeSuite(runDir, suite)));
  const targets = evaluateTargets(suites);
  writeFileSync(path.join(runDir, 'targets.json'), `${JSON.stringify(targets, null, 2)}\n`);
  writeFileSync(path.join(runDir, 'README.md'), `${summaryMarkdown(suites, targets, reproduceCommand(suites))}\n`);
  files.push(path.join(runDir, 'targets.json'), path.join(runDir, 'README.md'));

  // latest/: replace this run's suites, keep the others' newest results.
  for (const suite of suites) {
    for (const stale of suiteFiles(latestDir, suite.suite)) rmSync(path.join(latestDir, stale));
    for (const name of suiteFiles(runDir, suite.suite)) copyFileSync(path.join(runDir, name), path.join(latestDir, name));
  }
  const latest = readSuites(latestDir);
  const latestTargets = evaluateTargets(latest);
  writeFileSync(path.join(latestDir, 'targets.json'), `${JSON.stringify(latestTargets, null, 2)}\n`);
  writeFileSync(path.join(latestDir, 'README.md'), `${summaryMarkdown(latest, latestTargets, reproduceCommand(latest))}\n`);
  return { runDir, latestDir, targets, files };
}
