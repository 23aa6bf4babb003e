// A burst of completions that the kernel queues as task work all at once, with no later event to
// wake the loop again: every one of them must be delivered, on the default ring (COOP_TASKRUN)
// and on a DEFER_TASKRUN one. Recent kernels run a bounded number of deferred task-work items per
// GETEVENTS call (20 by default), so the reaper has to keep asking until nothing is left, not
// stop after one call.
import fs from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { Harness, native, skipUring } from './helpers.js';

const POLLIN = 0x1;
const PIPES = 200;

describe.skipIf(skipUring)('reaping a burst of deferred completions', () => {
  let harness: Harness | null = null;
  const fds: number[] = [];

  afterEach(() => {
    harness?.close();
    harness = null;
    for (const fd of fds.splice(0)) native().closeFd(fd);
  });

  for (const mode of ['auto', 'defer'] as const) {
    it(`delivers all ${PIPES} poll completions made ready in the same instant, with nothing else happening (mode '${mode}')`, async () => {
      harness = new Harness({ mode });
      const writers: number[] = [];
      for (let i = 0; i < PIPES; i++) {
        const ends = native().pipe2(0);
        if (typeof ends === 'number') throw new Error(`pipe2: ${ends}`);
        fds.push(...ends);
        expect(harness.ring.pollAdd(ends[0], POLLIN, 0, 1000 + i)).toBe(0);
        writers.push(ends[1]);
      }
      expect(harness.ring.submit()).toBe(PIPES);
      // Let the polls arm (nothing is readable yet, so nothing completes).
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(harness.cqes).toHaveLength(0);
      // Every pipe becomes readable before the event loop runs again: the kernel queues all the
      // poll completions as task work for this thread (DEFER_TASKRUN: and signals the eventfd once).
      for (const fd of writers) fs.writeSync(fd, 'x');
      await harness.waitFor(() => harness!.cqes.length === PIPES, `${PIPES} completions`, 5_000);
      const users = new Set(harness.cqes.map((c) => c.userData));
      expect(users.size).toBe(PIPES);
      for (const cqe of harness.cqes) expect(cqe.res & POLLIN).toBe(POLLIN);
    });
  }
});
