import type * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import { load } from '@zcsend/native';
import { ZcSendError, errnoError } from '../errors.js';
import type { RawRing, Sender } from '../sender.js';
import { currentFd, refreshIdleTimer, socketEligibility } from '../sockets.js';
import * as fs from 'node:fs';
import { fileError, fileTruncated } from './file-io.js';
import { SocketSlots } from './socket-slots.js';
import { socketClosed, untilLibuvIdle } from './socket-ready.js';
import type { FileFallbackReason, FileRef } from './types.js';
import { WritableWait } from './writable-wait.js';

const { EAGAIN, EBUSY, ECANCELED, EINTR, EINVAL, ENOSYS, EOPNOTSUPP } = osConstants.errno;

/** sendfile refuses this file (no splice_read, or not a regular file): another engine can serve it. */
const FILE_REFUSALS = new Set([EINVAL, EOPNOTSUPP, ENOSYS]);

const MiB = 1024 * 1024;
/**
 * Bytes one response sends before it yields the event loop to other work (setImmediate), when the
 * socket keeps taking bytes: a fast reader of a large file must not hold the loop for the whole
 * file. The same bound nginx's sendfile_max_chunk has by default.
 */
export const DEFAULT_SENDFILE_BYTES_PER_TURN = 2 * MiB;

/** sendfile(outFd, inFd, offset, count): bytes, 0 at end of file, or -errno. */
export type SendfileSyscall = (outFd: number, inFd: number, offset: number, count: number) => number;

export interface SendfileEngineOptions {
  /** The syscall; default the native binding's. null: unavailable. */
  sendfile?: SendfileSyscall | null;
  bytesPerTurn?: number;
}

export interface SendfileStats {
  activeSends: number;
  /** sendfile(2) calls made (including those that returned -EAGAIN). */
  calls: number;
  /** Times the socket was full (-EAGAIN) and a POLLOUT wait was queued on the ring. */
  socketWaits: number;
  /** Times a response gave the event loop back after bytesPerTurn bytes. */
  yields: number;
}

export type SendfileOutcome =
  | { bytes: number; fallback: null }
  /** sendfile did not (entirely) serve: [resumeAt, end) must go another way; bytes before it are on the socket. */
  | { bytes: number; fallback: { reason: FileFallbackReason; resumeAt: number } };

/**
 * The sendfile engine: synchronous sendfile(2) on the JS thread into libuv's non-blocking socket,
 * as many bytes as the socket takes, then a POLLOUT wait on the ring when it is full (what nginx
 * does with epoll). No io-wq thread hop per op as with IORING_OP_SPLICE, which io_uring always
 * runs in a worker; the price is that a page-cache miss blocks the event loop for the disk read,
 * which is why `auto` uses it only for files it has just served (FileSender's HotFiles).
 *
 * fd safety (DESIGN.md "Sockets owned by libuv"): every sendfile names the fd libuv holds at that
 * moment, checked in the same synchronous step; the waits name the socket only by its
 * registered-file slot, taken on the first -EAGAIN (most responses on a fast path never wait and
 * never touch the file table) and given back once no wait is left in the kernel. A socket closed
 * or destroyed while waiting cancels the wait, so the slot does not keep it open.
 */
export class SendfileEngine {
  private readonly syscall: SendfileSyscall | null;
  private readonly bytesPerTurn: number;
  private active = 0;
  private readonly counters = { calls: 0, socketWaits: 0, yields: 0 };

  constructor(
    private readonly sender: Sender,
    options: SendfileEngineOptions = {},
  ) {
    this.syscall = options.sendfile === undefined ? nativeSendfile() : options.sendfile;
    this.bytesPerTurn = options.bytesPerTurn ?? DEFAULT_SENDFILE_BYTES_PER_TURN;
  }

  /** Why sendfile cannot run with this Sender at all, or null (per-socket reasons come at send time). */
  get unavailableReason(): string | null {
    if (!this.syscall) return 'the native addon (sendfile) is unavailable';
    if (!this.sender.isOpen) return 'the Sender is closed';
    // Waiting for a full socket needs the ring: without one, copy serves the body.
    const raw = this.sender.ringOps();
    if (!raw) return `the Sender has no ring (${this.sender.fallbackReason ?? 'closed'})`;
    const { pollAdd, registerFileSlots, updateFile } = raw.ring;
    if (!pollAdd || !registerFileSlots || !updateFile) return 'the ring has no poll or file-table ops';
    const registered = SocketSlots.of(raw.ring).ensureRegistered();
    if (registered < 0) return `the kernel refused a registered-file table (errno ${-registered})`;
    return null;
  }

  /**
   * Sends [start, end) of the file on the socket. Resolves once every byte was accepted, or with
   * a fallback (nothing or a prefix sent) when sendfile cannot serve. Rejects with a ZcSendError
   * when the send failed part-way (the body is then incomplete).
   */
  async send(socket: net.Socket, file: FileRef, start: number, end: number): Promise<SendfileOutcome> {
    const fallback = (reason: FileFallbackReason, resumeAt = start): SendfileOutcome => ({ bytes: resumeAt - start, fallback: { reason, resumeAt } });
    if (this.unavailableReason !== null) return fallback('sendfile-unavailable');
    if (socketEligibility(socket).reason) return fallback('socket-ineligible');
    const raw = this.sender.ringOps()!;
    const slots = SocketSlots.of(raw.ring);

    this.active++;
    const opened = file.fd === undefined;
    let fileFd = file.fd ?? -1;
    let slot = -1;
    let wait: WritableWait | null = null;
    let closedError: ZcSendError | null = null;
    // libuv closing the fd cancels nothing: a wait would hold the connection open through the slot.
    const onClose = (): void => {
      closedError ??= socketClosed();
      wait?.cancel();
    };
    socket.once('close', onClose);
    try {
      // Synchronously, like the sends: the file was just sent (or the caller forced this engine),
      // so its path and inode are cached, and a threadpool round trip would cost more than the call.
      if (opened) fileFd = openSync(file.path);
      await untilLibuvIdle(socket);
      let offset = start;
      let turn = 0;
      while (offset < end) {
        if (closedError) throw closedError;
        // Checked and used in one synchronous step: the fd is this socket's for the call.
        const fd = currentFd(socket);
        if (fd < 0 || !socket.writable) throw socketClosed();
        const res = this.syscall!(fd, fileFd, offset, Math.min(end - offset, this.bytesPerTurn - turn));
        this.counters.calls++;
        if (res > 0) {
          offset += res;
          turn += res;
          refreshIdleTimer(socket);
          if (turn >= this.bytesPerTurn && offset < end) {
            this.counters.yields++;
            turn = 0;
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
          continue;
        }
        if (res === 0) throw fileTruncated(file.path, offset);
        if (res === -EINTR) continue;
        if (res !== -EAGAIN) {
          if (FILE_REFUSALS.has(-res)) return fallback('sendfile-refused', offset);
          throw errnoError('ZCSEND_ERR_SEND_FAILED', res, 'sendfile', 'sendfile to the socket failed');
        }
        // The socket is full. `fd` was its fd a moment ago, in this same step: it may fill the slot.
        if (slot < 0) {
          slot = slots.take(fd);
          if (slot < 0) return fallback(slot === -EBUSY ? 'sendfile-busy' : 'sendfile-unavailable', offset);
        }
        this.counters.socketWaits++;
        turn = 0;
        wait = new WritableWait(raw, slot);
        const ready = await wait.done;
        wait = null;
        if (closedError) throw closedError;
        if (ready === -ECANCELED) {
          throw new ZcSendError('ZCSEND_ERR_CANCELLED', 'the wait for the socket was cancelled', { errno: ECANCELED, syscall: 'io_uring_enter' });
        }
        // An error mask (POLLERR, POLLHUP) is reported by the sendfile that follows.
        if (ready < 0) throw errnoError('ZCSEND_ERR_SEND_FAILED', ready, 'io_uring_enter', 'waiting for the socket to take more bytes failed');
      }
      return { bytes: end - start, fallback: null };
    } finally {
      socket.off('close', onClose);
      // No wait is left in the kernel (each was awaited to its CQE): the slot may let the socket go.
      if (slot >= 0) slots.give(slot);
      if (opened && fileFd >= 0) closeQuietly(fileFd);
      this.active--;
    }
  }

  stats(): SendfileStats {
    return { activeSends: this.active, ...this.counters };
  }
}

function openSync(path: string): number {
  try {
    return fs.openSync(path, 'r');
  } catch (err) {
    throw fileError(err, 'open', path);
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Linux releases the descriptor even when close reports an error.
  }
}

function nativeSendfile(): SendfileSyscall | null {
  const { binding } = load();
  if (!binding || typeof binding.sendfile !== 'function') return null;
  return (outFd, inFd, offset, count) => binding.sendfile(outFd, inFd, offset, count);
}
