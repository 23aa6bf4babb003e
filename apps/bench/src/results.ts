// The shape of a run's JSON output: everything the Markdown, the charts and the target checks read.

export type SuiteName = 'sender' | 'files' | 'fastify';
export const SUITES: readonly SuiteName[] = ['sender', 'files', 'fastify'];
export type Mode = 'full' | 'quick' | 'smoke';

/** One measured run of one competitor. */
export interface Sample {
  round: number;
  /** Wall time of the measured window. */
  seconds: number;
  /** Bytes moved in the window (HTTP: response bytes the load generator read, headers included). */
  bytes: number;
  /** Completed HTTP responses; null for raw sends. */
  requests: number | null;
  /** CPU seconds of the server (or sender) process tree over the window, all threads. */
  cpuSeconds: number;
  /** Peak resident set (VmHWM) of the server processes during the window, summed; null if unknown. */
  peakRssBytes: number | null;
  /** Load-generator errors: connect/read/write/timeouts and non-2xx/3xx responses. */
  errors: number;
}

/** Median and range over the rounds. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface Metrics {
  mbPerSec: Spread;
  reqPerSec: Spread | null;
  /** Server CPU seconds per 10^9 bytes moved; null when no CPU time registered. */
  cpuSecondsPerGB: Spread | null;
  /** 10^6 bytes moved per server CPU second: the figure TARGETS.md uses. */
  mbPerCpuSecond: Spread | null;
  peakRssMiB: Spread | null;
  errors: number;
}

/** One competitor at one point of the grid (size, connections, kind). */
export interface Cell {
  competitor: string;
  /** Chart/table group inside the suite, e.g. "c16" (16 connections) or "buffer". */
  group: string;
  size: number;
  connections: number | null;
  samples: Sample[];
  metrics: Metrics | null;
  /** Set when the competitor failed at this point (crash, no responses); metrics are then null. */
  error: string | null;
}

export interface CompetitorInfo {
  id: string;
  label: string;
  status: 'ok' | 'skipped' | 'failed';
  /** Why skipped or failed. */
  reason: string | null;
  /** Version, backend, configuration: what was actually measured. */
  details: string | null;
}

export interface GroupInfo {
  id: string;
  title: string;
}

export interface MachineInfo {
  kernel: string;
  cpus: number;
  cpuModel: string;
  node: string;
  serverCpu: number;
  loadCpu: number;
  pinned: boolean;
}

export interface SuiteSettings {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  /** HTTP suites: the warm-up runs on to this many responses, up to warmupMaxSeconds. */
  warmupResponses?: number;
  warmupMaxSeconds?: number;
  sizes: number[];
  connections: number[];
  loadGenerator: string | null;
}

export interface SuiteResult {
  suite: SuiteName;
  title: string;
  mode: Mode;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  settings: SuiteSettings;
  competitors: CompetitorInfo[];
  groups: GroupInfo[];
  cells: Cell[];
  /** Caveats specific to this run (skips, pinning, loopback). */
  notes: string[];
}

export interface TargetResult {
  /** What is compared, e.g. "zcserve vs nginx (sendfile on), MB per server CPU-s". */
  target: string;
  /** The point measured, e.g. "1 MiB, 16 connections". */
  point: string;
  suite: SuiteName;
  required: string;
  /** Measured ratio (or value), null when it could not be measured. */
  measured: number | null;
  /** How `measured` reads, e.g. "1.12×" or "287 MiB". */
  measuredText: string;
  status: 'PASS' | 'FAIL' | 'N/A';
  /** Why N/A, or what the ratio was computed from. */
  note: string;
}
