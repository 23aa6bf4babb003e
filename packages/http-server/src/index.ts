export { sendBody, plainBodyReason, type SendBodyOptions, type PlainBodyReason } from './send-body.js';
export { outOfBandIneligibility, isBodyless, type IneligibleReason } from './response-socket.js';
export { serveStatic, type StaticHandler, type StaticStats, type NextFunction } from './static/handler.js';
export { STATIC_DEFAULTS, type StaticOptions, type DotfilesPolicy, type SymlinkPolicy, type EngineChoice, type Encoding } from './static/options.js';
export {
  createFileServer,
  STATS_PATH,
  METRICS_PATH,
  type FileServer,
  type FileServerOptions,
  type ListenResult,
  type CloseResult,
} from './server/file-server.js';
export { prometheusText, type ServerStats, type HttpCounters } from './server/metrics.js';
export type { LogSink } from './server/access-log.js';
export { parseSize } from './size.js';
