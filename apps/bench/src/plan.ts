// How much each mode measures. Full: about 14 minutes on 2 cores; quick: about 3½; smoke: seconds,
// for the test that checks the harness end to end (it proves the plumbing, not the numbers).
import type { Mode } from './results.js';
import { KiB, MiB } from './units.js';

export interface Plan {
  mode: Mode;
  rounds: number;
  /** Measured seconds per run. */
  seconds: number;
  /** Unmeasured load on each competitor before the rounds of a grid point (caches, JIT, TCP windows). */
  warmupSeconds: number;
  /**
   * The warm-up goes on until the competitor has completed this many responses (capped at
   * warmupMaxSeconds): V8 tiers a function up by how often it runs, so a large-body point, which
   * sees tens of responses a second, is still in baseline code and paying TurboFan compiles
   * after the fixed seconds. Steady state is what a long-running server delivers.
   */
  warmupResponses: number;
  warmupMaxSeconds: number;
  sender: { chunks: number[]; seconds: number; warmupSeconds: number };
  files: { sizes: number[]; connections: number[] };
  fastify: { sizes: number[]; connections: number };
}

export function planFor(mode: Mode): Plan {
  switch (mode) {
    case 'full':
      return {
        mode,
        rounds: 3,
        seconds: 2,
        warmupSeconds: 0.5,
        warmupResponses: 500,
        warmupMaxSeconds: 10,
        sender: { chunks: [4 * KiB, 64 * KiB, 1 * MiB, 4 * MiB], seconds: 2, warmupSeconds: 0.25 },
        files: { sizes: [4 * KiB, 64 * KiB, 1 * MiB, 16 * MiB], connections: [16, 256] },
        fastify: { sizes: [1 * KiB, 64 * KiB, 1 * MiB, 16 * MiB], connections: 16 },
      };
    case 'quick':
      return {
        mode,
        rounds: 2,
        seconds: 0.5,
        warmupSeconds: 0.25,
        warmupResponses: 200,
        warmupMaxSeconds: 3,
        sender: { chunks: [4 * KiB, 64 * KiB, 1 * MiB, 4 * MiB], seconds: 0.4, warmupSeconds: 0.1 },
        files: { sizes: [4 * KiB, 64 * KiB, 1 * MiB, 16 * MiB], connections: [16, 256] },
        fastify: { sizes: [1 * KiB, 64 * KiB, 1 * MiB, 16 * MiB], connections: 16 },
      };
    case 'smoke':
      return {
        mode,
        rounds: 1,
        seconds: 0.5,
        warmupSeconds: 0.2,
        warmupResponses: 0,
        warmupMaxSeconds: 0.2,
        sender: { chunks: [64 * KiB], seconds: 0.3, warmupSeconds: 0.05 },
        files: { sizes: [4 * KiB], connections: [16] },
        fastify: { sizes: [4 * KiB], connections: 16 },
      };
  }
}

/** Command-line overrides (--rounds, --seconds, --sizes) applied to every suite. */
export function withOverrides(plan: Plan, overrides: { rounds?: number; seconds?: number; sizes?: readonly number[] }): Plan {
  const next = structuredClone(plan);
  if (overrides.rounds !== undefined) next.rounds = overrides.rounds;
  if (overrides.seconds !== undefined) {
    next.seconds = overrides.seconds;
    next.sender.seconds = overrides.seconds;
  }
  if (overrides.sizes !== undefined) {
    // The sizes replace every suite's grid: body sizes, file sizes and send chunks alike.
    next.sender.chunks = [...overrides.sizes];
    next.files.sizes = [...overrides.sizes];
    next.fastify.sizes = [...overrides.sizes];
  }
  return next;
}
