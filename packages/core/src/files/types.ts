import type * as fs from 'node:fs';
import type { Sender } from '../sender.js';

/** How a file body reaches the socket. See DESIGN.md "Files". */
export type FileEngineName = 'zc-cache' | 'splice' | 'sendfile' | 'copy';

export interface FileSenderOptions {
  /** 'auto' (default) picks per response; a name forces that engine where it is available. */
  engine?: 'auto' | FileEngineName;
  /** Byte bound of the hot-file cache (zc-cache). Default 256 MiB. 0 disables the cache. */
  cacheBytes?: number;
  /** Files larger than this are never cached. Default 64 MiB, at most 1 GiB (a registered buffer's limit). */
  cacheMaxFileBytes?: number;
  /**
   * Bytes of read buffers held by in-flight copy-engine sends across all responses; further
   * reads wait in FIFO order (backpressure). Default 64 MiB. Cached files are bounded by
   * `cacheBytes` instead, so file bodies never hold more than `cacheBytes + maxInFlightBytes`.
   */
  maxInFlightBytes?: number;
  /** Bytes per read (and per send) in the copy engine. Default 1 MiB; at most half of maxInFlightBytes. */
  chunkSize?: number;
  /**
   * `auto` sends files of at least this many bytes by sendfile when they were just sent whole
   * (likely in the page cache), else by splice, where those can run (else by its cache rules).
   * Default 256 KiB (measured: see the README); Number.MAX_SAFE_INTEGER turns both off.
   */
  spliceMinBytes?: number;
  /** The Sender to send through. Default `getSender()`, looked up once at construction. */
  sender?: Sender;
}

/** The stat fields that identify one version of a file. `fs.Stats` has them. */
export type FileVersion = Pick<fs.Stats, 'size' | 'mtimeMs' | 'ino' | 'dev'>;

/** A file the caller has opened or stat'ed: the stat identifies the version (size, mtime, inode). */
export interface FileRef {
  path: string;
  stat: FileVersion;
  /**
   * An fd the caller opened on this file (and fstat'ed for `stat`): reads use it, so the body is
   * the version the headers describe even if the path is replaced meanwhile. The caller keeps
   * ownership and closes it after `sendFile` settles. Without it the path is opened per send.
   */
  fd?: number;
}

export interface SendFileOptions {
  /**
   * Bytes to put on the socket before the body, e.g. the HTTP response head (instead of writing
   * it first and waiting for libuv). The sendfile engine sends it with send(MSG_MORE) and the
   * first body bytes in one synchronous step, so they share segments and a body the socket takes
   * at once is out before sendFile's first await; the other engines write it through the socket
   * first. On rejection it may or may not have been written (the connection is broken anyway).
   */
  head?: Uint8Array;
}

/** Why a response did not use the engine asked for (or the one `auto` preferred). */
export type FileFallbackReason =
  /** Splice cannot run here: copy backend (no ring), native addon missing, Sender closed, or the kernel refused a registered-file table. */
  | 'splice-unavailable'
  /** The socket has no fd the kernel may write to (TLS, no handle): splice needs one. */
  | 'socket-ineligible'
  /** Every pipe (maxPipes) or registered-file slot is taken by responses in flight. */
  | 'splice-busy'
  /** The kernel refused to splice from this file (e.g. a filesystem without splice_read): the rest went by copy. */
  | 'splice-refused'
  /** sendfile cannot run here: copy backend (no ring to wait for a full socket), native addon missing, Sender closed, or no registered-file table. */
  | 'sendfile-unavailable'
  /** The socket was full and every registered-file slot (to wait for it) is taken: the rest went by copy. */
  | 'sendfile-busy'
  /** sendfile(2) refused this file (e.g. not a regular file, no splice_read): the rest went by copy. */
  | 'sendfile-refused'
  /**
   * `auto` sent the range by sendfile because cachestat found it cached, and the pages of a later
   * turn left the page cache meanwhile: the rest went by copy (a sendfile would have waited for
   * the disk on the event loop).
   */
  | 'sendfile-uncached'
  /** cacheBytes is 0. */
  | 'cache-disabled'
  /** The file is larger than cacheMaxFileBytes. */
  | 'too-large-for-cache'
  /** No room: every entry that would have to go is still referenced by a send in flight. */
  | 'cache-full'
  /** The file on disk is not the version in the FileRef (it changed under the caller). */
  | 'file-changed';

export interface FileSendResult {
  /** Bytes accepted by the kernel. */
  bytes: number;
  /** The engine that served the body. */
  engine: FileEngineName;
  cacheHit: boolean;
  fallbackReason: FileFallbackReason | null;
}

export interface FileSenderStats {
  engine: 'auto' | FileEngineName;
  /** The copy engine's read size. */
  chunkSize: number;
  /** sendFile calls not yet settled. */
  activeSends: number;
  /** Bytes of copy-engine buffers held by sends not yet released (bounded by maxInFlightBytes). */
  inFlightBytes: number;
  maxInFlightBytes: number;
  /** Reads waiting for in-flight bytes to be released (FIFO). */
  waitingSends: number;
  /** Pooled copy-engine buffers allocated, and how many of them are free. */
  pool: { buffers: number; free: number };
  cache: {
    /** Bytes charged: cached entries, loads in progress, and invalidated entries still referenced. */
    bytes: number;
    limitBytes: number;
    entries: number;
    /** Charged bytes that cannot be evicted now (loading, or referenced by a send not yet released). */
    busyBytes: number;
    hits: number;
    misses: number;
    /** Whole-file reads into the cache (concurrent misses of one file share one). */
    loads: number;
    evictions: number;
    invalidations: number;
  };
  /**
   * The splice engine: responses in flight, pipes open (in use + idle) and idle, the ring's
   * registered-file slots in use (shared by every FileSender on that ring), linked chains queued,
   * and waits for the socket to take more (it pushed back: short count or -EAGAIN).
   */
  splice: { activeSends: number; pipes: number; idlePipes: number; slotsInUse: number; chains: number; socketWaits: number };
  /**
   * The sendfile engine: responses in flight, sendfile(2) calls, waits for a full socket (a ring
   * POLLOUT on a registered-file slot), times a response yielded the event loop, how many file
   * versions `auto` currently counts as hot (sent whole recently), the sends `auto` gave sendfile
   * because cachestat found their range in the page cache, and the heads with bodies written in
   * one step by sendHeadAndFileNow with the body bytes it sent.
   */
  sendfile: {
    activeSends: number;
    calls: number;
    socketWaits: number;
    yields: number;
    hotFiles: number;
    residentSends: number;
    immediateSends: number;
    immediateBytes: number;
  };
  byEngine: Record<FileEngineName, { sends: number; bytes: number }>;
  fallbacks: Partial<Record<FileFallbackReason, number>>;
  /** sendFile calls that rejected. */
  errors: number;
  /** The same, by the rejection's `code` (ZCSEND_ERR_*, or a Node system error code; `unknown` without one). */
  errorCodes: Record<string, number>;
}
