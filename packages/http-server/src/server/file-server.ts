// createFileServer: serveStatic on its own http.Server with the operational parts (access log,
// stats endpoints, socket timeouts that cancel stalled sends, graceful close).
import * as http from 'node:http';
import * as net from 'node:net';
import { ConnectionDriver, StallCheck, ZcSendError, keepsConnection, type Sender } from '@zcsend/core';
import { serveStatic, staticServerOf, type StaticHandler } from '../static/handler.js';
import { FastLane, type FastLaneOptions } from '../fast/lane.js';
import type { StaticOptions } from '../static/options.js';
import { onSocketClose } from '../response-socket.js';
import { AccessLog, type LogSink } from './access-log.js';
import { prometheusText, type HttpCounters, type ServerStats } from './metrics.js';

export interface FileServerOptions extends StaticOptions {
  /** Directory to serve. */
  root: string;
  /**
   * Socket inactivity timeout in ms. A connection that makes no progress for this long has its
   * in-flight sends cancelled and is reset (which frees kernel-held buffers at once). Default 60000; 0 disables.
   */
  timeoutMs?: number;
  /**
   * A timed-out connection whose response is in progress or still held by the kernel is kept
   * while its peer acknowledges at least this many bytes per timeout period (the kernel's count):
   * slow but steady readers are not cut, a stalled one is reset at its second timeout at the
   * latest. 0: reset at the first timeout. Default 64 KiB.
   */
  minProgressBytes?: number;
  /** Keep-alive idle timeout in ms. Default 5000. */
  keepAliveTimeoutMs?: number;
  /** Expose GET /_zcsend/stats (JSON) and /_zcsend/metrics (Prometheus). Default false. */
  stats?: boolean;
  /** Access log: true writes to stdout, a function receives batches of lines. Default false. */
  accessLog?: boolean | LogSink;
  /** How long close() lets in-flight responses finish before resetting their connections, in ms. Default 10000. */
  shutdownTimeoutMs?: number;
  /**
   * Answer plain GET/HEAD requests for files (200 and 304) straight on the socket, without
   * node:http's request and response objects; a connection's first request that is anything else
   * (ranges, bodies, errors, redirects, unusual syntax) and all after it go to node:http. Same
   * bytes on the wire either way. Default true.
   */
  fastPath?: boolean;
}

export interface ListenResult {
  url: string;
  host: string;
  port: number;
}

export interface CloseResult {
  /** True when in-flight responses had to be cut off after shutdownTimeoutMs. */
  forced: boolean;
}

export interface FileServer {
  readonly server: http.Server;
  readonly handler: StaticHandler;
  readonly sender: Sender;
  listen(port?: number, host?: string): Promise<ListenResult>;
  stats(): ServerStats;
  metrics(): string;
  /** Stops accepting, lets in-flight responses finish (new ones get Connection: close), drains the sends. */
  close(): Promise<CloseResult>;
}

export const STATS_PATH = '/_zcsend/stats';
export const METRICS_PATH = '/_zcsend/metrics';

function ms(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', `option ${name} must be a non-negative integer (ms), got ${String(value)}`);
  }
  return value;
}

interface HttpMessageSocket extends net.Socket {
  _httpMessage?: http.ServerResponse | null;
}

export function createFileServer(options: FileServerOptions): FileServer {
  if (typeof options !== 'object' || options === null) throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', 'options must be an object');
  const { root, timeoutMs: t, minProgressBytes, keepAliveTimeoutMs: k, stats: statsOption, accessLog: logOption, shutdownTimeoutMs: s, fastPath, ...staticOptions } = options;
  const timeoutMs = ms('timeoutMs', t, 60_000);
  const keepAliveTimeoutMs = ms('keepAliveTimeoutMs', k, 5_000);
  const shutdownTimeoutMs = ms('shutdownTimeoutMs', s, 10_000);
  if (statsOption !== undefined && typeof statsOption !== 'boolean') throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', 'option stats must be a boolean');
  if (logOption !== undefined && typeof logOption !== 'boolean' && typeof logOption !== 'function') {
    throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', 'option accessLog must be a boolean or a function');
  }
  if (fastPath !== undefined && typeof fastPath !== 'boolean') throw new ZcSendError('ZCSEND_ERR_INVALID_OPTION', 'option fastPath must be a boolean');

  const stalls = new StallCheck({ minProgressBytes });
  // zcserve reads no header back (its access log takes the length from Node), so it keeps Node's fast path.
  const handler = serveStatic(root, { rawHeaders: true, ...staticOptions });
  const sender = handler.sender;
  const log = logOption ? new AccessLog(typeof logOption === 'function' ? logOption : (chunk) => process.stdout.write(chunk)) : null;
  const started = performance.now();
  const counters: HttpCounters = { requests: 0, inFlight: 0, statuses: {}, aborted: 0, timeouts: 0, connections: 0 };
  const connections = new Set<HttpMessageSocket>();
  let closing: Promise<CloseResult> | null = null;

  const server = http.createServer({ keepAliveTimeout: keepAliveTimeoutMs });
  // A client that half-closes after its requests (`printf ... | nc`) still gets every answer, the
  // connection ending after the last one. node:http's default aborts requests still in progress
  // and ends the socket at once, under a body the FileSender is still sending.
  (server as { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true;
  // node:http's own connection listener, before ours join it.
  const nodeListeners = server.listeners('connection');
  server.timeout = timeoutMs;

  server.on('connection', (socket: HttpMessageSocket) => {
    counters.connections++;
    connections.add(socket);
    socket.once('close', () => {
      counters.connections--;
      connections.delete(socket);
    });
  });

  // Request counters, the same for node:http's requests and the fast path's.
  const requestStarted = () => {
    counters.requests++;
    counters.inFlight++;
  };
  /** `code` '0' when nothing was sent; `complete` false when the response was cut short. */
  const requestEnded = (code: string, complete: boolean) => {
    counters.inFlight--;
    counters.statuses[code] = (counters.statuses[code] ?? 0) + 1;
    if (!complete) counters.aborted++;
  };

  // A response in progress, or finished but still pinned in the kernel, timed out. A peer still
  // acknowledging bytes is slow, not stalled: keep it (timer re-armed). A stalled one: cancel
  // what the ring holds and reset (a FIN would leave the buffers pinned in the orphaned socket);
  // a reset frees them now.
  const onStalled = (socket: net.Socket) => {
    if (keepsConnection(stalls.onTimeout(socket))) return;
    counters.timeouts++;
    sender.cancel(socket);
    socket.resetAndDestroy();
  };

  // An idle keep-alive connection is closed, unless the kernel still holds its last body.
  const onIdle = (socket: net.Socket) => {
    if (sender.holds(socket)) onStalled(socket);
    else socket.destroy();
  };

  // Node calls this for any socket timeout; with a listener it leaves the socket to us.
  server.on('timeout', (socket: HttpMessageSocket) => {
    const res = socket._httpMessage;
    if (res && !res.writableFinished) onStalled(socket);
    else onIdle(socket);
  });

  const lane = fastPath === false ? null : installFastLane(server, nodeListeners, handler, {
    keepAliveTimeoutMs,
    timeoutMs,
    closing: () => closing !== null,
    timed: log !== null,
    onRequest: requestStarted,
    onResponse: (r) => {
      requestEnded(String(r.status), r.complete);
      log?.record({
        remote: r.socket.remoteAddress,
        method: r.method,
        url: r.target,
        httpVersion: r.minor === 1 ? '1.1' : '1.0',
        status: r.status,
        bodyBytes: r.bodyBytes,
        ms: r.ms,
        complete: r.complete,
      });
    },
    onStalled,
    onIdle,
    // Handed over after close() looked at the connections: end it as close() would have.
    handedOver: (socket) => {
      if (closing) endIfIdle(socket as HttpMessageSocket);
    },
  });

  const statsNow = (): ServerStats => {
    const { files, ...rest } = handler.stats();
    return {
      pid: process.pid,
      uptimeSeconds: Math.round((performance.now() - started) / 10) / 100,
      backend: sender.backend,
      fallbackReason: sender.fallbackReason,
      ring: sender.ringDescription,
      sender: sender.stats(),
      files,
      static: rest,
      http: {
        ...counters,
        statuses: { ...counters.statuses },
        timeoutVerdicts: stalls.stats(),
        fastPath: { enabled: lane !== null, ...(lane?.stats() ?? { responses: 0, handovers: 0, cachedResponseBytes: 0, ring: null }) },
      },
    };
  };

  const answerStats = (req: http.IncomingMessage, res: http.ServerResponse, url: string): boolean => {
    const q = url.indexOf('?');
    const p = q < 0 ? url : url.slice(0, q);
    if (p !== STATS_PATH && p !== METRICS_PATH) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const json = p === STATS_PATH;
    const body = Buffer.from(json ? JSON.stringify(statsNow(), null, 2) + '\n' : prometheusText(statsNow()));
    res.writeHead(200, [
      'Content-Type', json ? 'application/json; charset=utf-8' : 'text/plain; version=0.0.4; charset=utf-8',
      'Content-Length', String(body.length),
      'Cache-Control', 'no-store',
    ]);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    requestStarted();
    if (closing) res.shouldKeepAlive = false; // Connection: close while shutting down
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      requestEnded(res.headersSent ? String(res.statusCode) : '0', res.writableFinished);
      if (closing) endIfIdle(req.socket as HttpMessageSocket);
    };
    res.once('close', settle);
    // A pipelined response whose connection dies before its turn never emits 'close'.
    if (!res.socket) {
      const unsubscribe = onSocketClose(req.socket, settle);
      res.once('close', unsubscribe);
    }
    log?.watch(req, res);

    const url = req.url ?? '/';
    if (statsOption && url.startsWith('/_zcsend/') && answerStats(req, res, url)) return;
    handler(req, res);
  });

  /** While closing, a keep-alive connection with nothing left to answer is ended. */
  const endIfIdle = (socket: HttpMessageSocket) => {
    setImmediate(() => {
      if (!socket.destroyed && !socket._httpMessage) socket.destroySoon();
    });
  };

  const listen = (port = 0, host = '127.0.0.1'): Promise<ListenResult> =>
    new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        const address = server.address() as net.AddressInfo;
        const shownHost = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
        resolve({ url: `http://${shownHost}:${address.port}/`, host: address.address, port: address.port });
      });
    });

  const close = (): Promise<CloseResult> => {
    closing ??= (async () => {
      let forced = false;
      const allClosed = new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        // net.Server#close stops accepting and calls back once every connection is gone.
        // http.Server#close would also destroy idle keep-alive connections at once with a FIN,
        // including those whose last body the kernel still holds for a peer that is not reading
        // (pinned until that peer reads); those are reset after the grace period instead.
        net.Server.prototype.close.call(server, () => resolve());
      });
      // Idle keep-alive connections go now; busy ones finish their response first. An idle one
      // whose last body the kernel still holds (the peer is not reading) waits for the grace
      // period and its reset: a FIN now would leave those buffers pinned.
      lane?.closeIdle();
      for (const socket of connections) {
        if (lane?.owns(socket)) continue; // the fast path ends its own, after their response
        const res = socket._httpMessage;
        if (!res) {
          if (!sender.holds(socket)) socket.destroySoon();
        } else if (!res.headersSent) res.shouldKeepAlive = false;
      }
      const timer = setTimeout(() => {
        forced = true;
        for (const socket of connections) {
          sender.cancel(socket);
          socket.resetAndDestroy();
        }
      }, shutdownTimeoutMs);
      await allClosed;
      clearTimeout(timer);
      lane?.close();
      await handler.close();
      await sender.whenDrained();
      log?.flush();
      return { forced };
    })();
    return closing;
  };

  return {
    server,
    handler,
    sender,
    listen,
    stats: statsNow,
    metrics: () => prometheusText(statsNow()),
    close,
  };
}

type LaneHooks = Pick<FastLaneOptions, 'keepAliveTimeoutMs' | 'timeoutMs' | 'closing' | 'timed' | 'onRequest' | 'onResponse' | 'onStalled' | 'onIdle' | 'handedOver'>;

/**
 * Puts the fast path in front of node:http: new connections go to the lane, which hands them to
 * node:http's own connection listener when it meets a request it does not take. null when this
 * Node's http.Server is not built the way that needs (one 'connection' listener of its own).
 */
function installFastLane(server: http.Server, listeners: readonly unknown[], handler: StaticHandler, hooks: LaneHooks): FastLane | null {
  const statics = staticServerOf(handler);
  if (!statics || listeners.length !== 1 || typeof listeners[0] !== 'function') return null;
  const nodeConnection = listeners[0] as (this: http.Server, socket: net.Socket) => void;
  server.removeListener('connection', nodeConnection);
  // Connections arrive unread, so the lane can give their reads to the ring (or resume them).
  (server as { pauseOnConnect?: boolean }).pauseOnConnect = true;
  const lane = new FastLane({
    ...hooks,
    handOver: (socket) => nodeConnection.call(server, socket),
    statics,
    fileSender: handler.fileSender,
    driver: handler.sender.backend === 'io_uring' ? new ConnectionDriver({ sender: handler.sender }) : null,
    headersTimeoutMs: () => server.headersTimeout,
    maxRequestsPerSocket: () => server.maxRequestsPerSocket ?? 0,
  });
  server.on('connection', (socket: net.Socket) => lane.accept(socket));
  return lane;
}
