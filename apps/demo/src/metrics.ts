// Turns cumulative counters into the 1 Hz samples the dashboard plots. Gauges (ops in flight,
// pinned bytes, notifications owed) change within milliseconds, so they are read ten times per
// interval and each sample carries the interval's peak rather than one arbitrary instant.
import type { SenderStats } from '@zcsend/core';
import type { LoadStatus } from './load.js';

export interface Reading {
  sender: SenderStats;
  /**
   * Bytes the file engines sent by splice (file → pipe → socket in the ring). They never pass
   * through Sender.send, so the Sender's byte counters do not include them.
   */
  splicedBytes: number;
  /** File-engine fallbacks by reason (cumulative), e.g. cache-full, file-changed. */
  fileFallbacks: Record<string, number>;
  /** Replies the @zcsend/fastify plugin left to Fastify, by reason (cumulative). */
  bypassed: Record<string, number>;
  /** Body bytes of every HTTP response with a Content-Length (cumulative). */
  httpBytes: number;
  httpResponses: number;
  load: LoadStatus;
}

export interface Sample {
  /** Unix time in ms at the end of the interval. */
  t: number;
  /** Per second over the interval; bytes in MB (10^6). */
  rates: {
    /** Body bytes zcsend had the kernel accept: through the Sender (io_uring or libuv) or spliced. */
    sentMBps: number;
    /** Body bytes of all HTTP responses (including those Fastify wrote itself). */
    httpMBps: number;
    /** SEND_ZC bytes whose notification reported no copy. */
    zeroCopyMBps: number;
    /** SEND_ZC bytes whose notification said the kernel copied them (IORING_NOTIF_USAGE_ZC_COPIED). */
    copiedMBps: number;
    /** Bytes by plain ring sends or libuv writes. */
    plainMBps: number;
    /** File bytes spliced from the page cache to the socket. */
    splicedMBps: number;
    responsesPerSec: number;
    notificationsPerSec: number;
    /** Fallbacks per second by reason (as in totals.fallbacks). */
    fallbacks: Record<string, number>;
    /** Bodies left to Fastify per second, by reason. */
    bypassed: Record<string, number>;
  };
  /** Highest value seen during the interval. */
  peaks: { inFlightOps: number; pinnedBytes: number; pendingNotifications: number };
  totals: {
    /** Sender bytes plus spliced bytes. */
    bytesSent: number;
    bytesZeroCopy: number;
    bytesCopied: number;
    bytesPlain: number;
    bytesSpliced: number;
    zcOpsSubmitted: number;
    opsSubmitted: number;
    notifications: number;
    cancellations: number;
    violations: number;
    httpBytes: number;
    httpResponses: number;
    /** Sender fallbacks by reason, then file-engine ones as `file:<reason>`. */
    fallbacks: Record<string, number>;
    /** Plugin bypasses (bodies left to Fastify) by reason. */
    bypassed: Record<string, number>;
  };
  load: LoadStatus;
}

export interface SamplerOptions {
  read: () => Reading;
  intervalMs?: number;
  gaugeMs?: number;
  /** Samples kept for clients that connect later. */
  history?: number;
  now?: () => number;
}

type Listener = (sample: Sample) => void;

const MB = 1e6;

function numericEntries(record: Partial<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(record)) if (typeof value === 'number') out[key] = value;
  return out;
}

/** Sender and file-engine fallbacks in one table; the file engines' reasons get a `file:` prefix. */
function allFallbacks(reading: Reading): Record<string, number> {
  const out = numericEntries(reading.sender.fallbacks);
  for (const [reason, n] of Object.entries(reading.fileFallbacks)) out[`file:${reason}`] = n;
  return out;
}

function rateOf(now: Record<string, number>, before: Record<string, number>, seconds: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(now)) out[key] = (value - (before[key] ?? 0)) / seconds;
  return out;
}

export class MetricsSampler {
  private readonly read: () => Reading;
  private readonly intervalMs: number;
  private readonly gaugeMs: number;
  private readonly historySize: number;
  private readonly now: () => number;
  private readonly listeners = new Set<Listener>();
  private readonly samples: Sample[] = [];
  private previous: { t: number; reading: Reading };
  private peaks = { inFlightOps: 0, pinnedBytes: 0, pendingNotifications: 0 };
  private gaugeTimer: NodeJS.Timeout | null = null;
  private sampleTimer: NodeJS.Timeout | null = null;

  constructor(options: SamplerOptions) {
    this.read = options.read;
    this.intervalMs = options.intervalMs ?? 1000;
    this.gaugeMs = options.gaugeMs ?? 100;
    this.historySize = options.history ?? 180;
    this.now = options.now ?? Date.now;
    this.previous = { t: this.now(), reading: this.read() };
  }

  start(): void {
    if (this.sampleTimer) return;
    this.gaugeTimer = setInterval(() => this.readGauges(this.read().sender), this.gaugeMs).unref();
    this.sampleTimer = setInterval(() => this.emit(this.sample()), this.intervalMs).unref();
  }

  stop(): void {
    if (this.gaugeTimer) clearInterval(this.gaugeTimer);
    if (this.sampleTimer) clearInterval(this.sampleTimer);
    this.gaugeTimer = this.sampleTimer = null;
    this.listeners.clear();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  history(): Sample[] {
    return [...this.samples];
  }

  private readGauges(sender: SenderStats): void {
    this.peaks.inFlightOps = Math.max(this.peaks.inFlightOps, sender.inFlightOps);
    this.peaks.pinnedBytes = Math.max(this.peaks.pinnedBytes, sender.pinnedBytes);
    this.peaks.pendingNotifications = Math.max(this.peaks.pendingNotifications, sender.pendingNotifications);
  }

  /** Closes the current interval: rates since the previous sample, peaks since then. Public for tests. */
  sample(): Sample {
    const t = this.now();
    const reading = this.read();
    this.readGauges(reading.sender);
    const before = this.previous.reading;
    const seconds = Math.max((t - this.previous.t) / 1000, 1e-3);
    const s = reading.sender;
    const b = before.sender;
    const fallbacks = allFallbacks(reading);
    const sent = s.bytesSent + reading.splicedBytes;
    const sentBefore = b.bytesSent + before.splicedBytes;
    const sample: Sample = {
      t,
      rates: {
        sentMBps: (sent - sentBefore) / MB / seconds,
        httpMBps: (reading.httpBytes - before.httpBytes) / MB / seconds,
        zeroCopyMBps: (s.bytesZeroCopy - b.bytesZeroCopy) / MB / seconds,
        copiedMBps: (s.bytesCopied - b.bytesCopied) / MB / seconds,
        plainMBps: (s.bytesPlain - b.bytesPlain) / MB / seconds,
        splicedMBps: (reading.splicedBytes - before.splicedBytes) / MB / seconds,
        responsesPerSec: (reading.httpResponses - before.httpResponses) / seconds,
        notificationsPerSec: (s.notifications - b.notifications) / seconds,
        fallbacks: rateOf(fallbacks, allFallbacks(before), seconds),
        bypassed: rateOf(reading.bypassed, before.bypassed, seconds),
      },
      peaks: this.peaks,
      totals: {
        bytesSent: sent,
        bytesZeroCopy: s.bytesZeroCopy,
        bytesCopied: s.bytesCopied,
        bytesPlain: s.bytesPlain,
        bytesSpliced: reading.splicedBytes,
        zcOpsSubmitted: s.zcOpsSubmitted,
        opsSubmitted: s.opsSubmitted,
        notifications: s.notifications,
        cancellations: s.cancellations,
        violations: s.violations,
        httpBytes: reading.httpBytes,
        httpResponses: reading.httpResponses,
        fallbacks,
        bypassed: { ...reading.bypassed },
      },
      load: reading.load,
    };
    this.previous = { t, reading };
    this.peaks = { inFlightOps: s.inFlightOps, pinnedBytes: s.pinnedBytes, pendingNotifications: s.pendingNotifications };
    return sample;
  }

  private emit(sample: Sample): void {
    this.samples.push(sample);
    if (this.samples.length > this.historySize) this.samples.shift();
    for (const listener of this.listeners) listener(sample);
  }
}
