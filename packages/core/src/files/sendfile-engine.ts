import type * as net from 'node:net';
import { load } from '@zcsend/native';
import type { Sender } from '../sender.js';
import { refreshIdleTimer, socketEligibility } from '../sockets.js';
import { closeNow, openVersionSync } from './file-io.js';
import { sendHeadAndFileNow, type HeadAndFileSyscalls, type SentNow } from './head-and-file.js';
import { SendfileTransfer, type SendfileCounters, type SendfileSyscall } from './sendfile-transfer.js';
import type { PageResidency } from './page-residency.js';
import { SocketSlots } from './socket-slots.js';
import { socketClosed, untilLibuvIdle } from './socket-ready.js';
import type { FileFallbackReason, FileRef } from './types.js';

const MiB = 1024 * 1024;
/**
 * Bytes one response sends before it yields the event loop to other work (setImmediate), when the
 * socket keeps taking bytes: a fast reader of a large file must not hold the loop for the whole
 * file. The same bound nginx's sendfile_max_chunk has by default.
 */
export const DEFAULT_SENDFILE_BYTES_PER_TURN = 2 * MiB;


export interface SendfileEngineOptions {
  /** The syscall; default the native binding's. null: unavailable. */
  sendfile?: SendfileSyscall | null;
  bytesPerTurn?: number;
  /** send(2) with MSG_MORE, for sendNow's head; default the native binding's. null: unavailable. */
  sendMore?: SendMoreSyscall | null;
}

export type SendMoreSyscall = (fd: number, data: Uint8Array, offset: number, length: number) => number;

export interface SendfileStats extends SendfileCounters {
  activeSends: number;
  /** sendNow calls that wrote a head and body, and the body bytes they sent by sendfile. */
  immediateSends: number;
  immediateBytes: number;
}

export type SendfileOutcome =
  | { bytes: number; fallback: null }
  /**
   * sendfile did not (entirely) serve: [resumeAt, end) must go another way; bytes before it are
   * on the socket, and so is the head unless `headPending` (the engine could not run at all).
   */
  | { bytes: number; fallback: { reason: FileFallbackReason; resumeAt: number }; headPending?: true };

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
  private readonly counters: SendfileCounters = { calls: 0, socketWaits: 0, yields: 0 };
  /** The syscalls of sendNow, sendfile counted; null without the addon. */
  private readonly immediate: HeadAndFileSyscalls | null;
  private immediateSends = 0;
  private immediateBytes = 0;

  constructor(
    private readonly sender: Sender,
    options: SendfileEngineOptions = {},
  ) {
    this.syscall = options.sendfile === undefined ? nativeSendfile() : options.sendfile;
    this.bytesPerTurn = options.bytesPerTurn ?? DEFAULT_SENDFILE_BYTES_PER_TURN;
    const sendMore = options.sendMore === undefined ? nativeSendMore() : options.sendMore;
    const sendfile = this.syscall;
    const counters = this.counters;
    this.immediate =
      sendMore && sendfile
        ? {
            sendMore,
            sendfile: (outFd, inFd, offset, count) => {
              counters.calls++;
              return sendfile(outFd, inFd, offset, count);
            },
          }
        : null;
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
   * when the send failed part-way (the body is then incomplete). `head`, when given, is on the
   * socket before any body byte: sent with the first bytes (sendNow) where it can be, else
   * written through libuv. It is not written when the engine cannot run (`headPending`) or the
   * file is not the caller's version (ZCSEND_ERR_FILE_CHANGED, checked before anything goes out).
   * `residency`, when [start, end) was just found in the page cache: every turn after the first
   * is asked again, and the rest falls back ('sendfile-uncached') once pages are gone.
   */
  async send(socket: net.Socket, file: FileRef, start: number, end: number, head?: Uint8Array, residency?: PageResidency): Promise<SendfileOutcome> {
    const cannotRun = (reason: FileFallbackReason): SendfileOutcome =>
      head ? { bytes: 0, fallback: { reason, resumeAt: start }, headPending: true } : { bytes: 0, fallback: { reason, resumeAt: start } };
    if (this.unavailableReason !== null) return cannotRun('sendfile-unavailable');
    if (socketEligibility(socket).reason) return cannotRun('socket-ineligible');
    const raw = this.sender.ringOps()!;

    this.active++;
    const opened = file.fd === undefined;
    let fileFd = file.fd ?? -1;
    try {
      // Synchronously, like the sends: the file was just sent (or the caller forced this engine),
      // so its path and inode are cached, and a threadpool round trip would cost more than the call.
      if (opened) fileFd = openVersionSync(file);
      let from = start;
      if (head) {
        // The head and the first turn's bytes in one step: they share segments, and a body that
        // fits the socket is out before this returns.
        // The engine's availability was checked above, in this same synchronous step.
        const sent = this.immediate ? this.writeNow(this.immediate, socket, head, fileFd, start, Math.min(end, start + this.bytesPerTurn)) : null;
        if (sent === null || sent.head < head.length) socket.write(sent === null ? head : head.subarray(sent.head));
        else from += sent.body;
        if (from === end) return { bytes: end - start, fallback: null };
      }
      await untilLibuvIdle(socket);
      const transfer = new SendfileTransfer({
        syscall: this.syscall!,
        raw,
        slots: SocketSlots.of(raw.ring),
        socket,
        fileFd,
        path: file.path,
        start: from,
        end,
        bytesPerTurn: this.bytesPerTurn,
        turnUsed: from - start,
        counters: this.counters,
        // The caller's answer covers the first turn; later ones are asked when they come.
        residency: residency ? { check: residency, verifiedUntil: Math.min(end, start + this.bytesPerTurn) } : undefined,
      });
      const onClose = (): void => transfer.abort(socketClosed());
      socket.once('close', onClose);
      try {
        const result = await transfer.run();
        if (result.resumeAt !== null) return { bytes: result.resumeAt - start, fallback: { reason: result.reason, resumeAt: result.resumeAt } };
        return { bytes: end - start, fallback: null };
      } finally {
        socket.off('close', onClose);
      }
    } finally {
      // The transfer settled: no wait of it is left in the kernel, its slot is empty again.
      if (opened && fileFd >= 0) closeNow(fileFd);
      this.active--;
    }
  }

  /**
   * A head and a small body from an open file, in one synchronous step (see sendHeadAndFileNow):
   * what the socket took, or null when this engine cannot run (the same conditions as send(), so
   * the copy backend never uses it) or the socket cannot take direct writes right now.
   */
  sendNow(socket: net.Socket, head: Uint8Array, fileFd: number, start: number, end: number): SentNow | null {
    if (!this.immediate || !this.canSendNow) return null;
    return this.writeNow(this.immediate, socket, head, fileFd, start, end);
  }

  /** sendNow once the engine is known to be able to run: the step itself, and its counters. */
  private writeNow(sys: HeadAndFileSyscalls, socket: net.Socket, head: Uint8Array, fileFd: number, start: number, end: number): SentNow | null {
    const sent = sendHeadAndFileNow(sys, socket, head, fileFd, start, end);
    if (sent !== null && sent.head > 0) {
      this.immediateSends++;
      this.immediateBytes += sent.body;
      if (sent.body > 0) refreshIdleTimer(socket);
    }
    return sent;
  }

  get canSendNow(): boolean {
    return this.immediate !== null && this.unavailableReason === null;
  }

  stats(): SendfileStats {
    return { activeSends: this.active, ...this.counters, immediateSends: this.immediateSends, immediateBytes: this.immediateBytes };
  }
}

function nativeSendMore(): SendMoreSyscall | null {
  const { binding } = load();
  if (!binding || typeof binding.sendMore !== 'function') return null;
  return (fd, data, offset, length) => binding.sendMore(fd, data, offset, length);
}

function nativeSendfile(): SendfileSyscall | null {
  const { binding } = load();
  if (!binding || typeof binding.sendfile !== 'function') return null;
  return (outFd, inFd, offset, count) => binding.sendfile(outFd, inFd, offset, count);
}
