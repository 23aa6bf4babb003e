// The "run load" button: one bounded load run at a time, in a worker thread, on loopback only.
import * as net from 'node:net';
import { Worker } from 'node:worker_threads';
import { isLoopbackAddress } from '@zcsend/core';
import { DemoError } from './errors.js';
import { emptyCounters, type LoadCounters, type LoadPlan, type LoadTarget, type WorkerMessage } from './load-plan.js';

export interface LoadRequest {
  seconds?: unknown;
  requests?: unknown;
  connections?: unknown;
}

export interface LoadStatus extends LoadCounters {
  state: 'idle' | 'running' | 'finished' | 'stopped' | 'failed';
  /** Runs started since the demo started. */
  run: number;
  seconds: number;
  requestLimit: number;
  connections: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Why no load can run here (server not on loopback), or null. */
  unavailable: string | null;
}

export const LOAD_LIMITS = {
  seconds: { min: 1, max: 60, default: 10 },
  requests: { min: 1, max: 1_000_000, default: 100_000 },
  connections: { min: 1, max: 64, default: 8 },
} as const;

/** A worker that ignores 'stop' this long is terminated. */
const STOP_GRACE_MS = 3000;

function bounded(name: keyof typeof LOAD_LIMITS, value: unknown): number {
  const limits = LOAD_LIMITS[name];
  if (value === undefined || value === null || value === '') return limits.default;
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < limits.min || n > limits.max) {
    throw new DemoError('ZCSEND_DEMO_ERR_LOAD_OPTION', `${name} must be an integer from ${limits.min} to ${limits.max}`);
  }
  return n;
}

/**
 * The loopback origin the load generator uses for a server listening on `address`: the address
 * itself when it is loopback, 127.0.0.1 / ::1 for a wildcard, otherwise an error (the demo never
 * sends load anywhere else).
 */
export function loopbackOrigin(address: net.AddressInfo): string | DemoError {
  let host = address.address;
  if (host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  else if (!isLoopbackAddress(host)) {
    return new DemoError(
      'ZCSEND_DEMO_ERR_NOT_LOOPBACK',
      `the built-in load runs on loopback only, and the server listens on ${host} (set HOST=127.0.0.1 or 0.0.0.0)`,
      409,
    );
  }
  return `http://${net.isIPv6(host) ? `[${host}]` : host}:${address.port}`;
}

export class LoadController {
  private worker: Worker | null = null;
  /** stop() was called for the current run: it ends as 'stopped', not 'finished'. */
  private stopRequested = false;
  private finished: Promise<void> = Promise.resolve();
  private current: LoadStatus;

  constructor(
    private readonly origin: () => string | DemoError,
    private readonly targets: readonly LoadTarget[],
  ) {
    this.current = this.idleStatus();
  }

  private idleStatus(): LoadStatus {
    return {
      state: 'idle',
      run: 0,
      seconds: LOAD_LIMITS.seconds.default,
      requestLimit: LOAD_LIMITS.requests.default,
      connections: LOAD_LIMITS.connections.default,
      startedAt: null,
      finishedAt: null,
      unavailable: null,
      ...emptyCounters(),
    };
  }

  status(): LoadStatus {
    const origin = this.origin();
    return { ...this.current, unavailable: origin instanceof DemoError ? origin.message : null };
  }

  get running(): boolean {
    return this.worker !== null;
  }

  /** Starts a run; throws DemoError on bad options, a run in progress, or a non-loopback server. */
  start(request: LoadRequest = {}): LoadStatus {
    const seconds = bounded('seconds', request.seconds);
    const requests = bounded('requests', request.requests);
    const connections = bounded('connections', request.connections);
    if (this.worker) throw new DemoError('ZCSEND_DEMO_ERR_LOAD_BUSY', 'a load run is already in progress', 409);
    const origin = this.origin();
    if (origin instanceof DemoError) throw origin;

    const plan: LoadPlan = { origin, targets: [...this.targets], seconds, requests, connections };
    const worker = new Worker(new URL('./load-worker.js', import.meta.url), { workerData: plan });
    this.worker = worker;
    this.current = {
      ...emptyCounters(),
      state: 'running',
      run: this.current.run + 1,
      seconds,
      requestLimit: requests,
      connections,
      startedAt: Date.now(),
      finishedAt: null,
      unavailable: null,
    };
    this.stopRequested = false;
    // The run's end state is published only at the worker's exit, when a new run can start:
    // a client that sees 'finished' and posts again must not get LOAD_BUSY.
    let reportedDone = false;
    let crashed = false;
    worker.on('message', (msg: WorkerMessage) => {
      Object.assign(this.current, msg.counters);
      if (msg.type === 'done') reportedDone = true;
    });
    worker.on('error', (err) => {
      crashed = true;
      this.current.lastError = err.message;
    });
    this.finished = new Promise((resolve) => {
      worker.once('exit', () => {
        this.current.state = crashed ? 'failed' : this.stopRequested ? 'stopped' : reportedDone ? 'finished' : 'failed';
        this.current.finishedAt = Date.now();
        this.worker = null;
        resolve();
      });
    });
    return this.status();
  }

  /** Asks the run to stop after its requests in progress; terminates it if it does not within a few seconds. */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.stopRequested = true;
    worker.postMessage('stop');
    const timer = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
    await this.finished;
    clearTimeout(timer);
  }

  /** Resolves when no run is in progress. */
  whenIdle(): Promise<void> {
    return this.finished;
  }
}
