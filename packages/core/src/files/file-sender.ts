import * as net from 'node:net';
import { ZcSendError } from '../errors.js';
import { getSender, type SendHandle, type Sender } from '../sender.js';
import { socketEligibility } from '../sockets.js';
import { BufferPool } from './buffer-pool.js';
import { ByteBudget } from './byte-budget.js';
import { sendByCopy, type CopyEngineContext } from './copy-engine.js';
import { FileCache, type CacheEntry } from './file-cache.js';
import { closeNow, openVersion, openVersionSync } from './file-io.js';
import type { SentNow } from './head-and-file.js';
import { HotFiles } from './hot-files.js';
import { PageResidency } from './page-residency.js';
import { resolveFileSenderOptions, type ResolvedFileSenderOptions } from './options.js';
import { PendingWork } from './pending-work.js';
import { RepeatTracker } from './repeat-tracker.js';
import { SendfileEngine } from './sendfile-engine.js';
import { SpliceEngine } from './splice-engine.js';
import type { FileEngineName, FileFallbackReason, FileRef, FileSenderOptions, FileSenderStats, FileSendResult, SendFileOptions } from './types.js';

interface Plan {
  engine: FileEngineName;
  fallbackReason: FileFallbackReason | null;
  /** `auto` chose splice for a file not known to be hot: sendfile instead if the range is in the page cache. */
  unlessResident?: true;
}

/**
 * Sends byte ranges of files on sockets through a Sender, choosing an engine per response
 * (DESIGN.md "Files"). The caller owns the HTTP framing: it writes the headers first, then
 * calls `sendFile`, and writes nothing else on the socket until it settles.
 */
export class FileSender {
  readonly sender: Sender;
  private readonly options: ResolvedFileSenderOptions;
  private readonly pool: BufferPool;
  private readonly budget: ByteBudget;
  private readonly cache: FileCache;
  private readonly repeats = new RepeatTracker();
  private readonly hot = new HotFiles();
  private readonly residency = new PageResidency();
  /** Sends `auto` gave sendfile because cachestat found their range cached (not hot by HotFiles). */
  private residentSends = 0;
  private readonly work = new PendingWork();
  private readonly copyContext: CopyEngineContext;
  private readonly splice: SpliceEngine;
  private readonly sendfile: SendfileEngine;
  private active = 0;
  private closePromise: Promise<void> | null = null;
  private readonly byEngine: FileSenderStats['byEngine'] = {
    'zc-cache': { sends: 0, bytes: 0 },
    splice: { sends: 0, bytes: 0 },
    sendfile: { sends: 0, bytes: 0 },
    copy: { sends: 0, bytes: 0 },
  };
  private readonly fallbacks: FileSenderStats['fallbacks'] = {};
  private errors = 0;
  private readonly errorCodes: Record<string, number> = {};

  constructor(options: FileSenderOptions = {}) {
    this.options = resolveFileSenderOptions(options);
    this.sender = this.options.sender ?? getSender();
    this.pool = new BufferPool(this.options.chunkSize);
    this.budget = new ByteBudget(this.options.maxInFlightBytes);
    this.cache = new FileCache(this.options.cacheBytes, this.sender);
    this.copyContext = { sender: this.sender, pool: this.pool, budget: this.budget, work: this.work };
    this.splice = new SpliceEngine(this.sender);
    this.sendfile = new SendfileEngine(this.sender);
  }

  /**
   * Sends bytes [start, end) of `file` on `socket` (after `options.head`, if given: see
   * SendFileOptions); resolves once every byte was accepted.
   * On rejection (a ZcSendError) the body is incomplete: the caller must destroy the socket if
   * the Sender has not already.
   */
  async sendFile(socket: net.Socket, file: FileRef, start: number, end: number, options: SendFileOptions = {}): Promise<FileSendResult> {
    validate(socket, file, start, end);
    const head = headOption(options);
    if (this.closePromise) throw new ZcSendError('ZCSEND_ERR_SENDER_CLOSED', 'the file sender is closed');
    if (socket.destroyed || !socket.writable) throw new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket is closed or no longer writable');
    if (start === end) {
      if (head) socket.write(head);
      return { bytes: 0, engine: this.options.engine === 'zc-cache' ? 'zc-cache' : 'copy', cacheHit: false, fallbackReason: null };
    }
    const plan = this.plan(file);

    this.active++;
    this.work.begin();
    try {
      const result = await this.run(plan, socket, file, start, end, head);
      if (result.fallbackReason) this.fallbacks[result.fallbackReason] = (this.fallbacks[result.fallbackReason] ?? 0) + 1;
      const counts = this.byEngine[result.engine];
      counts.sends++;
      counts.bytes += result.bytes;
      // Its pages were just read: a synchronous sendfile of this version should not wait for the
      // disk. Only sizes `auto` may send by sendfile, so small files do not crowd the large out.
      if (start === 0 && end === file.stat.size && end >= this.options.spliceMinBytes) this.hot.sentWhole(file);
      return result;
    } catch (err) {
      this.errors++;
      const code = rejectionCode(err);
      this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1;
      throw err;
    } finally {
      this.active--;
      this.work.end();
    }
  }

  /**
   * For a body the caller also holds in memory and has just read (its pages are cached): writes
   * `head` and bytes [start, end) of the open file `fileFd` in one synchronous step, by
   * send(MSG_MORE) and sendfile(2), so the body is not copied in this process. Returns what the
   * socket took; the caller writes the rest itself (socket.write), in order. null, with nothing
   * written, when the sendfile engine cannot run (copy backend, no addon, closed) or the socket
   * cannot take direct writes now (libuv holds bytes for it, TLS, closed). Keep the body small:
   * the call does not yield the event loop. Bad arguments (and an empty range: a head sent with
   * MSG_MORE and no body after it would wait in the socket) throw ZCSEND_ERR_INVALID_ARG before
   * anything is written, in every mode.
   */
  sendHeadAndFileNow(socket: net.Socket, head: Uint8Array, fileFd: number, start: number, end: number): SentNow | null {
    if (!(socket instanceof net.Socket)) invalidArg('socket must be a net.Socket');
    if (!(head instanceof Uint8Array)) invalidArg('head must be a Buffer or Uint8Array');
    if (!Number.isInteger(fileFd) || fileFd < 0 || fileFd > 0x7fffffff) invalidArg(`fileFd must be a non-negative integer, got ${String(fileFd)}`);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start >= end) {
      invalidArg(`range [${String(start)}, ${String(end)}) must be a non-empty range of the file`);
    }
    // sendNow checks that the engine can run; checking it here too would repeat that per response.
    if (this.closePromise || !this.enginesAllowSendNow) return null;
    return this.sendfile.sendNow(socket, head, fileFd, start, end);
  }

  /**
   * Whether sendHeadAndFileNow can run at all (before a caller opens a file for it): the engine
   * is `auto` or `sendfile` (a user who chose `copy` or `zc-cache` gets no sendfile), and the
   * sendfile engine can run (ring, addon).
   */
  get canSendHeadAndFileNow(): boolean {
    return !this.closePromise && this.enginesAllowSendNow && this.sendfile.canSendNow;
  }

  private get enginesAllowSendNow(): boolean {
    return this.options.engine === 'auto' || this.options.engine === 'sendfile';
  }

  stats(): FileSenderStats {
    const { bytes, limitBytes, entries, busyBytes, hits, misses, loads, evictions, invalidations } = this.cache.stats();
    return {
      engine: this.options.engine,
      chunkSize: this.options.chunkSize,
      activeSends: this.active,
      inFlightBytes: this.budget.inUse,
      maxInFlightBytes: this.budget.limit,
      waitingSends: this.budget.waiting,
      pool: { buffers: this.pool.buffers, free: this.pool.freeBuffers },
      splice: this.splice.stats(),
      sendfile: { ...this.sendfile.stats(), hotFiles: this.hot.size, residentSends: this.residentSends },
      cache: { bytes, limitBytes, entries, busyBytes, hits, misses, loads, evictions, invalidations },
      byEngine: {
        'zc-cache': { ...this.byEngine['zc-cache'] },
        splice: { ...this.byEngine.splice },
        sendfile: { ...this.byEngine.sendfile },
        copy: { ...this.byEngine.copy },
      },
      fallbacks: { ...this.fallbacks },
      errors: this.errors,
      errorCodes: { ...this.errorCodes },
    };
  }

  /**
   * Takes no more sends, waits for those in progress (splice chains included: until their last
   * CQE) and for the release of every buffer they used, then drops the cache, the buffer pool and
   * the idle pipes. Does not close the Sender (it may be shared).
   */
  close(): Promise<void> {
    this.closePromise ??= this.work.whenIdle().then(() => {
      this.cache.clear();
      this.pool.clear();
      this.splice.close();
    });
    return this.closePromise;
  }

  /**
   * Opens `file.path` and checks it is still `file.stat`'s version (else rejects with
   * ZCSEND_ERR_FILE_CHANGED); resolves with an fd for `sendFile` (and the caller's own reads),
   * which the caller closes once those settled. A version this FileSender just sent whole is
   * opened synchronously: its dentry and inode are cached, and each threadpool round trip costs
   * more than the open and fstat themselves.
   */
  openVersion(file: FileRef): Promise<number> {
    if (!this.hot.isHot(file)) return openVersion(file);
    try {
      return Promise.resolve(openVersionSync(file));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Which engine serves this file. `auto`, for files of at least spliceMinBytes: sendfile when
   * this version was just sent whole (hot: its pages are in the page cache, so the synchronous
   * sendfile will not block the event loop on the disk) or, once opened, when cachestat finds the
   * range cached; else splice (io_uring runs it in a worker thread, so a cold file never blocks
   * the loop), where those can run. Smaller files, or
   * where neither can run: the cache for files within its limits that are already cached, small
   * (one read either way), or requested before; else copy.
   */
  private plan(file: FileRef): Plan {
    const { engine, cacheBytes, cacheMaxFileBytes, chunkSize, spliceMinBytes } = this.options;
    const size = file.stat.size;
    switch (engine) {
      case 'copy':
        return { engine: 'copy', fallbackReason: null };
      case 'splice':
      case 'sendfile':
        // Whether it can run (ring, addon, socket, kernel) is decided at send time, with a reason.
        return { engine, fallbackReason: null };
      case 'zc-cache':
        if (cacheBytes === 0) return { engine: 'copy', fallbackReason: 'cache-disabled' };
        if (size > cacheMaxFileBytes) return { engine: 'copy', fallbackReason: 'too-large-for-cache' };
        return { engine: 'zc-cache', fallbackReason: null };
      case 'auto': {
        if (size === 0) return { engine: 'copy', fallbackReason: null };
        // Large files by sendfile or splice: the page cache is their cache, and no byte is copied in the sender.
        if (size >= spliceMinBytes) {
          const sendfileCanRun = this.sendfile.unavailableReason === null;
          if (sendfileCanRun && this.hot.isHot(file)) return { engine: 'sendfile', fallbackReason: null };
          if (this.splice.unavailableReason === null) {
            return sendfileCanRun ? { engine: 'splice', fallbackReason: null, unlessResident: true } : { engine: 'splice', fallbackReason: null };
          }
        }
        if (size > cacheMaxFileBytes) return { engine: 'copy', fallbackReason: null };
        const cacheable = this.cache.has(file) || size <= chunkSize || this.repeats.seenBefore(file);
        return { engine: cacheable ? 'zc-cache' : 'copy', fallbackReason: null };
      }
    }
  }

  /**
   * The head goes out only once the body's source is known to be the caller's version: the
   * sendfile engine checks before it sends it; for the engines that read the path, the file is
   * opened and checked here first (and they read through that fd); a cache entry is that version
   * by its key. So a ZCSEND_ERR_FILE_CHANGED rejection has put nothing on the socket; a change
   * found after bytes went out (a sendfile or splice that stopped part-way, then copy) rejects
   * as a failed send.
   */
  private async run(plan: Plan, socket: net.Socket, file: FileRef, start: number, end: number, head: Uint8Array | null): Promise<FileSendResult> {
    let result: FileSendResult | null = null;
    let copyFrom = start;
    let pendingHead = head;
    /** Something of this response (head or body) is on its way to the socket. */
    let touched = false;
    let ownFd = -1;
    const writeHead = (): void => {
      if (pendingHead) {
        socket.write(pendingHead);
        touched = true;
      }
      pendingHead = null;
    };
    let checked: (FileRef & { fd: number }) | null = file.fd === undefined ? null : { ...file, fd: file.fd };
    const checkedFile = async (): Promise<FileRef & { fd: number }> => {
      if (!checked) {
        ownFd = await this.openVersion(file);
        checked = { ...file, fd: ownFd };
      }
      return checked;
    };
    try {
      let sendfileFile: FileRef = file;
      let residency: PageResidency | undefined;
      // Splice opens the file anyway: one cachestat on that fd decides, at no extra open. Not for
      // a socket neither engine can write to (TLS): copy serves those.
      if (plan.unlessResident && socketEligibility(socket).reason === null) {
        const opened = await checkedFile();
        if (this.residency.resident(opened.fd, start, end) === true) {
          plan = { engine: 'sendfile', fallbackReason: null };
          sendfileFile = opened;
          residency = this.residency;
        }
      }
      if (plan.engine === 'sendfile') {
        const outcome = await this.sendfile.send(socket, sendfileFile, start, end, head ?? undefined, residency);
        if (residency && outcome.bytes > 0) this.residentSends++;
        if (!outcome.fallback) {
          result = { bytes: outcome.bytes, engine: 'sendfile', cacheHit: false, fallbackReason: null };
        } else {
          if (!outcome.headPending) pendingHead = null;
          copyFrom = outcome.fallback.resumeAt;
          touched = (head !== null && !outcome.headPending) || copyFrom > start;
          plan = { engine: copyFrom === start ? 'copy' : 'sendfile', fallbackReason: outcome.fallback.reason };
        }
      }
      if (plan.engine === 'splice') {
        const checked = await checkedFile();
        writeHead();
        const outcome = await this.splice.send(socket, checked, start, end);
        if (!outcome.fallback) {
          result = { bytes: outcome.bytes, engine: 'splice', cacheHit: false, fallbackReason: null };
        } else {
          copyFrom = outcome.fallback.resumeAt;
          touched ||= copyFrom > start;
          plan = { engine: copyFrom === start ? 'copy' : 'splice', fallbackReason: outcome.fallback.reason };
        }
      }
      if (plan.engine === 'zc-cache') {
        const got = await this.cache.acquire(file);
        if (got.entry) {
          writeHead();
          const bytes = await this.sendCached(socket, got.entry, start, end);
          result = { bytes, engine: 'zc-cache', cacheHit: got.hit, fallbackReason: null };
        } else {
          plan = { engine: 'copy', fallbackReason: got.reason };
        }
      }
      if (!result) {
        const checked = await checkedFile();
        writeHead();
        // A splice or sendfile that stopped part-way (refused file, no slot) left [start, copyFrom) on the socket.
        const bytes = (copyFrom - start) + (await sendByCopy(this.copyContext, socket, checked, copyFrom, end));
        const engine = plan.engine === 'splice' || plan.engine === 'sendfile' ? plan.engine : 'copy';
        result = { bytes, engine, cacheHit: false, fallbackReason: plan.fallbackReason };
      }
    } catch (err) {
      if (touched && err instanceof ZcSendError && err.code === 'ZCSEND_ERR_FILE_CHANGED') {
        throw new ZcSendError('ZCSEND_ERR_SEND_FAILED', `${file.path} changed part-way through the body`, { cause: err, syscall: 'fstat' });
      }
      throw err;
    } finally {
      // The engines have settled: no read or splice of theirs uses the fd any more.
      if (ownFd >= 0) closeNow(ownFd);
    }
    // Node calls a write's callback without an error when the socket was destroyed under it
    // (stream_base_commons onWriteComplete), so a libuv-path send can look complete when it was not.
    if (socket.destroyed && socket.errored) {
      throw new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket failed before the file was sent', { cause: socket.errored });
    }
    return result;
  }

  /** Sends a slice of the cached buffer (no copy in JS); the entry stays referenced until released. */
  private sendCached(socket: net.Socket, entry: CacheEntry, start: number, end: number): Promise<number> {
    let handle: SendHandle;
    try {
      const slice = entry.buffer!.subarray(start, end);
      handle = this.sender.send(socket, slice, entry.slot >= 0 ? { fixedBuffer: entry.slot } : {});
    } catch (err) {
      this.cache.release(entry);
      throw err;
    }
    this.work.untilReleased(handle.released, () => this.cache.release(entry));
    return handle.sent;
  }
}

function headOption(options: SendFileOptions): Uint8Array | null {
  if (typeof options !== 'object' || options === null) invalidArg('options must be an object');
  const { head } = options;
  if (head === undefined || head === null) return null;
  if (!(head instanceof Uint8Array)) invalidArg('options.head must be a Buffer or Uint8Array');
  return head.length > 0 ? head : null;
}

function invalidArg(message: string): never {
  throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', message);
}

function validate(socket: unknown, file: FileRef, start: number, end: number): void {
  if (!(socket instanceof net.Socket)) invalidArg('socket must be a net.Socket');
  if (typeof file !== 'object' || file === null || typeof file.path !== 'string' || typeof file.stat !== 'object' || file.stat === null) {
    invalidArg('file must be { path: string, stat: fs.Stats, fd?: number }');
  }
  const size = file.stat.size;
  if (!Number.isSafeInteger(size) || size < 0) invalidArg(`file.stat.size must be a non-negative integer, got ${String(size)}`);
  if (file.fd !== undefined && (!Number.isInteger(file.fd) || file.fd < 0)) invalidArg(`file.fd must be a non-negative integer, got ${String(file.fd)}`);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end || end > size) {
    invalidArg(`range [${String(start)}, ${String(end)}) is not within the file's ${size} bytes`);
  }
}

/** The stable code of a rejection (ZcSendError or Node's system errors), for the counters. */
function rejectionCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length > 0 && code.length <= 64 ? code : 'unknown';
}
