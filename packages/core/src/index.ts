export { Sender, getSender, type SendHandle, type SendOptions, type SendReport, type RawOp, type RawRing } from './sender.js';
export { probe, type ProbeResult, type RingBackend, type RingBackendFactory, type CompletionHandler } from './backend.js';
export { ZcSendError, type ZcSendErrorCode } from './errors.js';
export { type SenderOptions, DEFAULT_CHUNK_SIZE, LARGE_CHUNK_SIZE, DEFAULT_THRESHOLD } from './options.js';
export { type SenderStats } from './stats.js';
export { type FallbackReason, socketEligibility, isLoopbackAddress } from './sockets.js';
export { onSocketClose, whenResponseSocket } from './response-socket.js';
export { fallbackChannel, copiedChannel, violationChannel } from './diagnostics.js';
export * as constants from './constants.js';
export * from './files/index.js';
export {
  ConnectionDriver,
  DEFAULT_RECEIVE_BUFFERS,
  DEFAULT_RECEIVE_BUFFER_BYTES,
  type ConnectionDriverOptions,
  type ConnectionStats,
} from './conn/connection-driver.js';
export { RingConnection, type ConnectionHandlers, type ConnectionCounters } from './conn/ring-connection.js';
export {
  StallCheck,
  tcpBytesAcked,
  keepsConnection,
  DEFAULT_MIN_PROGRESS_BYTES,
  type StallCheckOptions,
  type StallCheckStats,
  type TimeoutVerdict,
} from './stall-check.js';
