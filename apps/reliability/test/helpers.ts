// The test mode CI asks for: ZCSEND_DISABLE=1 runs the servers on the copy backend,
// ZCSEND_REQUIRE_URING=1 on io_uring (and then io_uring must work).
import { probe } from '@zcsend/core';
import type { Mode } from '../src/lib/server-process.js';

export const REQUIRE_URING = process.env.ZCSEND_REQUIRE_URING === '1';
const machine = probe();
export const URING_AVAILABLE = machine.available;

/** The backend the servers under test use in this run. */
export const MODE: Mode = process.env.ZCSEND_DISABLE === '1' ? 'copy' : machine.available || REQUIRE_URING ? 'uring' : 'copy';
if (process.env.ZCSEND_DISABLE !== '1' && MODE === 'copy') console.warn(`[zcsend] io_uring unavailable, testing the copy backend: ${machine.reason}`);
