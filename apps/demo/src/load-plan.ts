// Shapes shared by the load controller (main thread) and the load worker.

export interface LoadTarget {
  /** Request path, e.g. /files/1m.bin */
  path: string;
  bytes: number;
  sha256: string;
}

export interface LoadPlan {
  /** http://127.0.0.1:PORT: always a loopback origin. */
  origin: string;
  targets: LoadTarget[];
  seconds: number;
  requests: number;
  connections: number;
}

export interface LoadCounters {
  /** Responses read to the end. */
  requests: number;
  /** Body bytes received. */
  bytes: number;
  /** Responses whose body had the expected length and sha256. */
  verified: number;
  /** Responses with a wrong status, length or sha256. */
  mismatches: number;
  /** Requests that failed (connection error, reset). */
  errors: number;
  lastError: string | null;
}

export type WorkerMessage = { type: 'progress'; counters: LoadCounters } | { type: 'done'; counters: LoadCounters };

export function emptyCounters(): LoadCounters {
  return { requests: 0, bytes: 0, verified: 0, mismatches: 0, errors: 0, lastError: null };
}
