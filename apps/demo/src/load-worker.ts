// Runs in a worker thread so the load generator's event loop (and its sha256 work) does not share
// the server's: keep-alive HTTP/1.1 clients on loopback fetching a mix of files and API buffers.
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { Pool } from 'undici';
import { emptyCounters, type LoadPlan, type LoadTarget, type WorkerMessage } from './load-plan.js';

const plan = workerData as LoadPlan;
const counters = emptyCounters();
const deadline = Date.now() + plan.seconds * 1000;
let issued = 0;
let stopping = false;
/** Aborts the requests in progress on stop: a 64 MiB body need not be read to the end. */
const abort = new AbortController();

parentPort?.on('message', (msg) => {
  if (msg !== 'stop') return;
  stopping = true;
  abort.abort();
});
// The port alone must not keep the thread alive: it exits once the run is over.
parentPort?.unref();

function post(message: WorkerMessage): void {
  parentPort?.postMessage(message);
}

function pick(): LoadTarget {
  return plan.targets[Math.floor(Math.random() * plan.targets.length)] as LoadTarget;
}

async function fetchOne(pool: Pool, target: LoadTarget): Promise<void> {
  const { statusCode, body } = await pool.request({ path: target.path, method: 'GET', signal: abort.signal });
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    counters.bytes += chunk.length;
  }
  counters.requests++;
  if (statusCode === 200 && bytes === target.bytes && hash.digest('hex') === target.sha256) counters.verified++;
  else {
    counters.mismatches++;
    counters.lastError = `${target.path}: status ${statusCode}, ${bytes} of ${target.bytes} bytes or wrong sha256`;
  }
}

async function connectionLoop(pool: Pool): Promise<void> {
  while (!stopping && issued < plan.requests && Date.now() < deadline) {
    issued++;
    try {
      await fetchOne(pool, pick());
    } catch (err) {
      if (stopping) break; // aborted on purpose
      counters.errors++;
      counters.lastError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
  }
}

async function run(): Promise<void> {
  const pool = new Pool(plan.origin, { connections: plan.connections, pipelining: 1 });
  const progress = setInterval(() => post({ type: 'progress', counters: { ...counters } }), 250);
  try {
    await Promise.all(Array.from({ length: plan.connections }, () => connectionLoop(pool)));
  } finally {
    clearInterval(progress);
    await pool.close().catch(() => {});
  }
  post({ type: 'done', counters: { ...counters } });
}

run().catch((err: unknown) => {
  counters.errors++;
  counters.lastError = err instanceof Error ? err.message : String(err);
  post({ type: 'done', counters: { ...counters } });
});
