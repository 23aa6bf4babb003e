// The CI-sized soak: zcserve and the Fastify app under well-behaved, aborting and stalling
// clients, in this run's mode. Every check of the full soak (`pnpm soak`) except RSS growth,
// which a run of seconds cannot measure.
import { describe, expect, it } from 'vitest';
import { CI_SOAK } from '../src/soak/plan.js';
import { summary } from '../src/soak/report.js';
import { runScenario } from '../src/soak/run.js';
import { MODE } from './helpers.js';

const SEED = 4242;

describe(`soak, CI-sized (${MODE})`, () => {
  // zcserve as configured by default (large files splice), zcserve with every file body through
  // SEND_ZC (--engine zc-cache), and Fastify with zcSend (Buffer replies through SEND_ZC, files).
  // On the copy backend zc-cache is the default engine's path already: it runs in io_uring mode only.
  const scenarios = (
    [
      ['zcserve', 'auto'],
      ['zcserve', 'zc-cache'],
      ['fastify', 'auto'],
    ] as const
  ).filter(([, engine]) => engine === 'auto' || MODE === 'uring');
  it.each(scenarios)('%s (file engine %s) keeps serving byte-exact under aborts and stalls and leaks nothing', async (kind, choice) => {
    const engine = choice === 'auto' ? undefined : choice;
    const result = await runScenario({ kind, engine, mode: MODE, config: { ...CI_SOAK, seed: SEED }, checkRss: false });
    const report = summary(result);
    console.log(report);
    expect(result.requests.completed, report).toBeGreaterThan(CI_SOAK.requests / 2);
    expect(result.requests.stalled + result.requests.aborted, report).toBeGreaterThan(0);
    const failed = result.checks.filter((c) => !c.ok);
    expect(failed.map((c) => `${c.name}: ${c.detail}`), report).toEqual([]);
  });
});
