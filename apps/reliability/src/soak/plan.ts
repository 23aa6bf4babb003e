// What the soak asks for: body sizes and their weights, and per request what the client does.
import { KiB, MiB } from '../lib/fixtures.js';
import type { Rng } from '../lib/prng.js';
import type { ServerKind } from '../lib/server-process.js';

export interface SoakConfig {
  requests: number;
  connections: number;
  /** Served body sizes with relative weights; sizes need not be powers of two. */
  sizes: ReadonlyArray<readonly [number, number]>;
  /** Share of requests whose client goes away mid-body (or right after sending). */
  abortRatio: number;
  /** Share of requests whose client reads nothing until the end of the run. */
  stallRatio: number;
  /** Share of file requests that ask for one byte range. */
  rangeRatio: number;
  /** Server socket inactivity timeout (ms); stalled clients are cut off after it. */
  timeoutMs: number;
  seed: number;
}

/**
 * The soak: 20,000 requests over 200 connections, 1 KiB-64 MiB. Small bodies dominate
 * by count and large ones by bytes (about 1.7 MiB per request on average, some 30 GB a run).
 */
export const FULL_SOAK: Omit<SoakConfig, 'seed'> = {
  requests: 20_000,
  connections: 200,
  sizes: [
    [1 * KiB, 14],
    [3 * KiB + 7, 12],
    [16 * KiB, 12],
    [60 * KiB + 13, 12],
    [256 * KiB, 12],
    [1 * MiB, 10],
    [1 * MiB + 12_345, 10],
    [4 * MiB + 1, 8],
    [16 * MiB, 3],
    [64 * MiB, 1],
  ],
  abortRatio: 0.2,
  stallRatio: 0.05,
  rangeRatio: 0.1,
  timeoutMs: 3000,
};

/** The CI-sized soak: same mix of behaviours, seconds not minutes. */
export const CI_SOAK: Omit<SoakConfig, 'seed'> = {
  requests: 400,
  connections: 24,
  sizes: [
    [1 * KiB, 10],
    [17 * KiB + 3, 10],
    [200 * KiB, 10],
    [1 * MiB + 5, 8],
    [6 * MiB + 11, 3],
  ],
  abortRatio: 0.2,
  stallRatio: 0.05,
  rangeRatio: 0.1,
  timeoutMs: 2500,
};

export type Behaviour = 'complete' | 'abort-mid-body' | 'abort-after-request' | 'stall';

export interface PlannedRequest {
  index: number;
  /** Relative path of the body file under the root (bodies/…). */
  rel: string;
  target: string;
  behaviour: Behaviour;
  /** Half-open byte range asked for with Range, or null for the whole body. */
  range: [number, number] | null;
  /** For abort-mid-body: body bytes to read before going away (at least 1). */
  abortAfter: number;
  /** Go away with a TCP reset (SO_LINGER 0) rather than a FIN. */
  reset: boolean;
}

/** URL for a body: zcserve serves files; the Fastify app has an in-memory route and a static one. */
export function targetFor(kind: ServerKind, rel: string, rng: Rng): { target: string; isFile: boolean } {
  const name = rel.split('/').pop()!;
  if (kind === 'zcserve') return { target: `/bodies/${name}`, isFile: true };
  return rng.chance(0.5) ? { target: `/bodies/${name}`, isFile: false } : { target: `/static/bodies/${name}`, isFile: true };
}

export function planRequest(index: number, kind: ServerKind, config: Omit<SoakConfig, 'seed'>, rels: Map<number, string>, rng: Rng): PlannedRequest {
  const size = rng.weighted(config.sizes);
  const rel = rels.get(size)!;
  const { target, isFile } = targetFor(kind, rel, rng);
  const roll = rng.float();
  let behaviour: Behaviour = 'complete';
  if (roll < config.stallRatio) behaviour = 'stall';
  else if (roll < config.stallRatio + config.abortRatio) behaviour = rng.chance(0.8) ? 'abort-mid-body' : 'abort-after-request';
  let range: [number, number] | null = null;
  if (isFile && size > 1 && rng.chance(config.rangeRatio)) {
    const start = rng.int(0, size - 1);
    const end = rng.int(start + 1, size);
    range = [start, end];
  }
  const length = range ? range[1] - range[0] : size;
  return { index, rel, target, behaviour, range, abortAfter: length > 1 ? rng.int(1, length - 1) : 1, reset: rng.chance(0.5) };
}
