// GET /_zcsend/stats (JSON) and /_zcsend/metrics (Prometheus text exposition format 0.0.4).
import type { SenderStats, StallCheckStats } from '@zcsend/core';
import type { StaticStats } from '../static/handler.js';
import type { FastLaneStats } from '../fast/lane.js';

export interface HttpCounters {
  requests: number;
  /** Requests whose response has not closed yet. */
  inFlight: number;
  /** Responses by status code. */
  statuses: Record<string, number>;
  /** Responses that ended with their connection before they finished. */
  aborted: number;
  /** Connections closed by the socket timeout (their sends cancelled). */
  timeouts: number;
  connections: number;
}

export interface ServerStats {
  pid: number;
  uptimeSeconds: number;
  backend: 'io_uring' | 'copy';
  fallbackReason: string | null;
  ring: string | null;
  sender: SenderStats;
  files: StaticStats['files'];
  static: Omit<StaticStats, 'files'>;
  http: HttpCounters & {
    /** Timeouts of connections with a response in progress or held, by verdict (core's StallCheck). */
    timeoutVerdicts: StallCheckStats;
    /** The fast path's share (createFileServer's `fastPath`); zeros when it is off. */
    fastPath: FastLaneStats & { enabled: boolean };
  };
}

type Kind = 'counter' | 'gauge';

const SENDER_METRICS: Array<[keyof SenderStats, string, Kind, string]> = [
  ['opsSubmitted', 'zcsend_ops_submitted_total', 'counter', 'Ring ops (SEND_ZC and plain SEND) handed to the kernel.'],
  ['opsSent', 'zcsend_ops_sent_total', 'counter', 'Ops whose first completion arrived.'],
  ['opsReleased', 'zcsend_ops_released_total', 'counter', 'Ops whose buffer the kernel let go.'],
  ['opsFailed', 'zcsend_ops_failed_total', 'counter', 'Ops whose first completion was an error.'],
  ['zcOpsSubmitted', 'zcsend_zc_ops_submitted_total', 'counter', 'SEND_ZC ops submitted.'],
  ['notifications', 'zcsend_notifications_total', 'counter', 'Zero-copy notification completions received.'],
  ['bytesSent', 'zcsend_bytes_sent_total', 'counter', 'Body bytes accepted by the kernel through the Sender (spliced and sendfile file bytes are in zcsend_file_bytes_total{engine="splice"|"sendfile"}).'],
  ['bytesZeroCopy', 'zcsend_bytes_zero_copy_total', 'counter', 'Bytes sent by SEND_ZC without a copy.'],
  ['bytesCopied', 'zcsend_bytes_copied_total', 'counter', 'Bytes sent by SEND_ZC that the kernel reported copied.'],
  ['bytesPlain', 'zcsend_bytes_plain_total', 'counter', 'Bytes sent by plain ring sends or libuv writes.'],
  ['copyWrites', 'zcsend_copy_writes_total', 'counter', 'Writes that went through libuv.'],
  ['inFlightOps', 'zcsend_in_flight_ops', 'gauge', 'Ring ops not yet released.'],
  ['pinnedBytes', 'zcsend_pinned_bytes', 'gauge', 'Bytes of buffers the kernel may still read.'],
  ['pendingNotifications', 'zcsend_pending_notifications', 'gauge', 'Notifications still owed by the kernel.'],
  ['cancellations', 'zcsend_cancellations_total', 'counter', 'Ops cancelled.'],
  ['violations', 'zcsend_protocol_violations_total', 'counter', 'Completions that broke the SEND_ZC contract.'],
  ['cqOverflows', 'zcsend_cq_overflows_total', 'counter', 'Completion queue overflows.'],
  ['submitErrors', 'zcsend_submit_errors_total', 'counter', 'io_uring_enter submit failures.'],
];

function block(out: string[], name: string, kind: Kind, help: string, samples: Array<[string, number]>): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`);
  for (const [labels, value] of samples) out.push(`${name}${labels} ${Number.isFinite(value) ? value : 0}`);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function label(name: string, value: string): string {
  return `{${name}="${escapeLabel(value)}"}`;
}

export function prometheusText(stats: ServerStats): string {
  const out: string[] = [];
  block(out, 'zcsend_info', 'gauge', 'Backend in use (1) with the fallback reason when copying.', [
    [`{backend="${stats.backend}",fallback_reason="${escapeLabel(stats.fallbackReason ?? '')}"}`, 1],
  ]);
  for (const [key, name, kind, help] of SENDER_METRICS) block(out, name, kind, help, [['', stats.sender[key] as number]]);
  block(
    out,
    'zcsend_fallbacks_total',
    'counter',
    'Sends (or sockets, for adaptive verdicts) that did not use SEND_ZC, by reason.',
    Object.entries(stats.sender.fallbacks).map(([reason, n]) => [label('reason', reason), n ?? 0]),
  );

  const { cache } = stats.files;
  block(out, 'zcsend_file_cache_bytes', 'gauge', 'Bytes charged to the file cache.', [['', cache.bytes]]);
  block(out, 'zcsend_file_cache_limit_bytes', 'gauge', 'File cache byte limit.', [['', cache.limitBytes]]);
  block(out, 'zcsend_file_cache_entries', 'gauge', 'Files in the cache.', [['', cache.entries]]);
  block(out, 'zcsend_file_cache_hits_total', 'counter', 'File cache hits.', [['', cache.hits]]);
  block(out, 'zcsend_file_cache_misses_total', 'counter', 'File cache misses.', [['', cache.misses]]);
  block(out, 'zcsend_file_cache_evictions_total', 'counter', 'File cache evictions.', [['', cache.evictions]]);
  block(out, 'zcsend_file_cache_invalidations_total', 'counter', 'Cached files dropped because they changed on disk.', [['', cache.invalidations]]);
  block(out, 'zcsend_file_in_flight_bytes', 'gauge', 'Read-buffer bytes held by file sends in flight.', [['', stats.files.inFlightBytes]]);
  block(out, 'zcsend_file_waiting_sends', 'gauge', 'File sends waiting for in-flight bytes (backpressure).', [['', stats.files.waitingSends]]);
  block(
    out,
    'zcsend_file_sends_total',
    'counter',
    'File bodies sent, by engine.',
    Object.entries(stats.files.byEngine).map(([engine, v]) => [label('engine', engine), v.sends]),
  );
  block(
    out,
    'zcsend_file_bytes_total',
    'counter',
    'File body bytes sent, by engine.',
    Object.entries(stats.files.byEngine).map(([engine, v]) => [label('engine', engine), v.bytes]),
  );
  block(
    out,
    'zcsend_file_errors_total',
    'counter',
    'File sends that rejected (body cut short), by error code.',
    Object.entries(stats.files.errorCodes).map(([code, n]) => [label('code', code), n]),
  );
  block(out, 'zcsend_inline_cache_bytes', 'gauge', 'Bytes of small files held in memory.', [['', stats.static.inlineBytes]]);

  block(out, 'zcsend_http_requests_total', 'counter', 'HTTP requests received.', [['', stats.http.requests]]);
  block(out, 'zcsend_http_in_flight_requests', 'gauge', 'HTTP requests not finished yet.', [['', stats.http.inFlight]]);
  block(
    out,
    'zcsend_http_responses_total',
    'counter',
    'HTTP responses by status code.',
    Object.entries(stats.http.statuses).map(([code, n]) => [label('code', code), n]),
  );
  block(out, 'zcsend_http_aborted_total', 'counter', 'Responses cut short by the client or a timeout.', [['', stats.http.aborted]]);
  block(out, 'zcsend_http_timeouts_total', 'counter', 'Connections reset by the socket timeout (stalled).', [['', stats.http.timeouts]]);
  block(
    out,
    'zcsend_http_timeout_verdicts_total',
    'counter',
    'Timeouts of connections with a response in progress or held: watching (first look), progressing (kept), stalled or unknown (reset).',
    Object.entries(stats.http.timeoutVerdicts).map(([verdict, n]) => [label('verdict', verdict), n]),
  );
  block(out, 'zcsend_http_connections', 'gauge', 'Open HTTP connections.', [['', stats.http.connections]]);
  block(out, 'zcsend_http_fast_path_responses_total', 'counter', 'Responses written by the fast path, without node:http.', [['', stats.http.fastPath.responses]]);
  block(out, 'zcsend_http_fast_path_handovers_total', 'counter', 'Connections handed from the fast path to node:http.', [['', stats.http.fastPath.handovers]]);
  const ring = stats.http.fastPath.ring;
  if (ring) {
    block(out, 'zcsend_http_ring_connections', 'gauge', 'Fast-path connections read and written through the ring now.', [['', ring.active]]);
    block(out, 'zcsend_http_ring_connections_total', 'counter', 'Fast-path connections read and written through the ring.', [['', ring.driven]]);
    block(out, 'zcsend_http_ring_received_bytes_total', 'counter', 'Bytes received by ring-driven connections (multishot receives).', [['', ring.bytesReceived]]);
    block(out, 'zcsend_http_ring_written_bytes_total', 'counter', 'Bytes written by ring sends on ring-driven connections.', [['', ring.bytesWritten]]);
    block(out, 'zcsend_http_ring_rearms_total', 'counter', 'Receives armed again after the receive pool ran dry.', [['', ring.rearms]]);
  }
  block(out, 'zcsend_uptime_seconds', 'gauge', 'Seconds since the server started.', [['', stats.uptimeSeconds]]);
  out.push('');
  return out.join('\n');
}
