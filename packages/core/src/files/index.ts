export { FileSender } from './file-sender.js';
export { closeNow as closeFileNow, openVersion as openFileVersion } from './file-io.js';
export type { SentNow } from './head-and-file.js';
export {
  DEFAULT_CACHE_BYTES,
  DEFAULT_CACHE_MAX_FILE_BYTES,
  DEFAULT_FILE_CHUNK_SIZE,
  DEFAULT_MAX_IN_FLIGHT_BYTES,
  DEFAULT_SPLICE_MIN_BYTES,
} from './options.js';
export type {
  FileEngineName,
  FileFallbackReason,
  FileRef,
  FileSenderOptions,
  FileSenderStats,
  FileSendResult,
  SendFileOptions,
  FileVersion,
} from './types.js';
