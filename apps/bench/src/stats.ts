// Per-sample rates and their median / min-max over rounds.
import type { Metrics, Sample, Spread } from './results.js';

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function spread(values: readonly number[]): Spread | null {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return null;
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite) };
}

/**
 * Rates are computed per sample, then summarised: a median of ratios, not a ratio of sums, so one
 * disturbed round moves the median little. CPU-derived rates skip samples with no CPU time
 * registered (below one clock tick), which only happens in tiny smoke runs.
 */
export function summarize(samples: readonly Sample[]): Metrics | null {
  const good = samples.filter((s) => s.bytes > 0 && s.seconds > 0);
  if (good.length === 0) return null;
  const withCpu = good.filter((s) => s.cpuSeconds > 0);
  const withRss = good.filter((s) => s.peakRssBytes !== null);
  const withRequests = good.filter((s) => s.requests !== null);
  return {
    mbPerSec: spread(good.map((s) => s.bytes / 1e6 / s.seconds))!,
    reqPerSec: withRequests.length ? spread(withRequests.map((s) => s.requests! / s.seconds)) : null,
    cpuSecondsPerGB: spread(withCpu.map((s) => s.cpuSeconds / (s.bytes / 1e9))),
    mbPerCpuSecond: spread(withCpu.map((s) => s.bytes / 1e6 / s.cpuSeconds)),
    peakRssMiB: withRss.length ? spread(withRss.map((s) => s.peakRssBytes! / 1048576)) : null,
    errors: samples.reduce((sum, s) => sum + s.errors, 0),
  };
}
