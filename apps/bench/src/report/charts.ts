// SVG charts rendered from the JSON by Vega-Lite → Vega, headless (renderer 'none' + toSVG, no
// browser, no canvas needed). One line per competitor, medians with min–max bars, log y axis
// because a 4 KiB point and a 16 MiB point differ by orders of magnitude.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { SuiteName, SuiteResult } from '../results.js';
import { formatSize } from '../units.js';

export type ChartKind = 'throughput' | 'cpu';

export function chartFileName(suite: SuiteName, group: string, kind: ChartKind): string {
  return `${suite}-${group}-${kind}.svg`;
}

interface Row {
  competitor: string;
  size: number;
  sizeLabel: string;
  median: number;
  min: number;
  max: number;
}

function rows(suite: SuiteResult, group: string, kind: ChartKind): Row[] {
  const labels = new Map(suite.competitors.map((c) => [c.id, c.label]));
  const out: Row[] = [];
  for (const cell of suite.cells) {
    if (cell.group !== group || !cell.metrics) continue;
    const s = kind === 'throughput' ? cell.metrics.mbPerSec : cell.metrics.cpuSecondsPerGB;
    if (!s || !(s.median > 0)) continue;
    out.push({ competitor: labels.get(cell.competitor) ?? cell.competitor, size: cell.size, sizeLabel: formatSize(cell.size), median: s.median, min: s.min, max: s.max });
  }
  return out;
}

export function chartSpec(suite: SuiteResult, group: string, kind: ChartKind): TopLevelSpec {
  const data = rows(suite, group, kind);
  const sizes = [...new Set(data.map((r) => r.size))].sort((a, b) => a - b).map(formatSize);
  // Same colour for the same competitor in every chart of the suite.
  const domain = suite.competitors.filter((c) => c.status !== 'skipped').map((c) => c.label);
  const groupTitle = suite.groups.find((g) => g.id === group)?.title ?? group;
  const who = suite.suite === 'sender' ? 'sender' : 'server';
  const yTitle = kind === 'throughput' ? 'MB/s (median, min–max)' : `${who} CPU-seconds per GB (lower is better)`;
  const sizeTitle = suite.suite === 'sender' ? 'chunk size' : 'body size';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `${suite.title}: ${kind === 'throughput' ? 'throughput' : 'CPU per GB'}`,
      subtitle: `${groupTitle} · ${suite.mode} run ${suite.startedAt.slice(0, 10)} · loopback`,
    },
    width: 520,
    height: 300,
    background: 'white',
    data: { values: data as unknown as Record<string, unknown>[] },
    encoding: {
      x: { field: 'sizeLabel', type: 'ordinal', sort: sizes, title: sizeTitle, axis: { labelAngle: 0 } },
      color: { field: 'competitor', type: 'nominal', scale: { domain }, legend: { orient: 'bottom', columns: 2, title: null, labelLimit: 600 } },
    },
    layer: [
      {
        mark: { type: 'rule', strokeWidth: 2, opacity: 0.6 },
        encoding: { y: { field: 'min', type: 'quantitative', scale: { type: 'log' }, title: yTitle }, y2: { field: 'max' } },
      },
      {
        mark: { type: 'line', point: true },
        encoding: {
          y: { field: 'median', type: 'quantitative', scale: { type: 'log' }, title: yTitle },
          tooltip: [{ field: 'competitor' }, { field: 'sizeLabel' }, { field: 'median', format: '.3~s' }],
        },
      },
    ],
  };
}

export async function renderChart(suite: SuiteResult, group: string, kind: ChartKind): Promise<string> {
  const view = new vega.View(vega.parse(compile(chartSpec(suite, group, kind)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Every chart of a suite: file name → SVG text. Groups without data are left out. */
export async function renderSuiteCharts(suite: SuiteResult): Promise<Map<string, string>> {
  const charts = new Map<string, string>();
  for (const group of suite.groups) {
    if (!suite.cells.some((c) => c.group === group.id && c.metrics)) continue;
    for (const kind of ['throughput', 'cpu'] as const) {
      charts.set(chartFileName(suite.suite, group.id, kind), await renderChart(suite, group.id, kind));
    }
  }
  return charts;
}
