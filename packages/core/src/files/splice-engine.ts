import type * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import { load } from '@zcsend/native';
import type { RawRing, Sender } from '../sender.js';
import { currentFd, socketEligibility } from '../sockets.js';
import { PipePool, type Pipe, type PipeSyscalls } from './pipe-pool.js';
import { SocketSlots } from './socket-slots.js';
import { socketClosed, untilLibuvIdle } from './socket-ready.js';
import { SpliceTransfer, type SpliceCounters } from './splice-transfer.js';
import type { FileFallbackReason, FileRef } from './types.js';

const { EBUSY } = osConstants.errno;

const MiB = 1024 * 1024;
/** F_SETPIPE_SZ asked per pipe: /proc/sys/fs/pipe-max-size's default, so unprivileged processes get it too. */
export const DEFAULT_PIPE_SIZE = 1 * MiB;
/** file->pipe->socket pairs per linked chain; see the package README for the measurement. */
export const DEFAULT_PAIRS_PER_CHAIN = 4;

export interface SpliceEngineOptions {
  pipeSize?: number;
  /** Pipes open at once per FileSender (one per response in flight). */
  maxPipes?: number;
  /** Idle pipes kept for reuse. */
  maxIdlePipes?: number;
  pairsPerChain?: number;
  /** Pipe syscalls; default the native binding's. */
  pipes?: PipeSyscalls | null;
}

export interface SpliceStats extends SpliceCounters {
  activeSends: number;
  pipes: number;
  idlePipes: number;
  slotsInUse: number;
}

export type SpliceOutcome =
  | { bytes: number; fallback: null }
  /** Splice did not (entirely) serve: [resumeAt, end) must go another way; bytes before it are on the socket. */
  | { bytes: number; fallback: { reason: FileFallbackReason; resumeAt: number } };

interface Lease {
  raw: RawRing;
  slots: SocketSlots;
  pipe: Pipe;
}

/**
 * The splice engine: IORING_OP_SPLICE file -> pipe -> socket from the page cache, with no copy
 * in the sender (DESIGN.md "Files"). Per response it takes a pooled pipe and a registered-file
 * slot for the socket, runs a SpliceTransfer, and gives both back once no op of the transfer is
 * left in the kernel. Falls back (with a reason) wherever it cannot run: no ring, no addon, a
 * socket without a usable fd, a kernel that refuses the file table or the file.
 */
export class SpliceEngine {
  private readonly pool: PipePool | null;
  private readonly pairsPerChain: number;
  private readonly unavailable: string | null;
  private active = 0;
  private readonly counters: SpliceCounters = { chains: 0, socketWaits: 0 };

  constructor(
    private readonly sender: Sender,
    options: SpliceEngineOptions = {},
  ) {
    const syscalls = options.pipes === undefined ? nativePipes() : options.pipes;
    this.unavailable = syscalls ? null : 'the native addon (pipe helpers) is unavailable';
    this.pool = syscalls
      ? new PipePool(syscalls, {
          pipeSize: options.pipeSize ?? DEFAULT_PIPE_SIZE,
          maxPipes: options.maxPipes ?? 256,
          maxIdle: options.maxIdlePipes ?? 16,
        })
      : null;
    this.pairsPerChain = options.pairsPerChain ?? DEFAULT_PAIRS_PER_CHAIN;
  }

  /** Why splice cannot run with this Sender at all, or null (per-socket reasons come at send time). */
  get unavailableReason(): string | null {
    if (this.unavailable) return this.unavailable;
    if (!this.sender.isOpen) return 'the Sender is closed';
    const raw = this.sender.ringOps();
    if (!raw) return `the Sender has no ring (${this.sender.fallbackReason ?? 'closed'})`;
    const { splice, pollAdd, registerFileSlots, updateFile } = raw.ring;
    if (!splice || !pollAdd || !registerFileSlots || !updateFile) return 'the ring has no splice, poll or file-table ops';
    const registered = SocketSlots.of(raw.ring).ensureRegistered();
    if (registered < 0) return `the kernel refused a registered-file table (errno ${-registered})`;
    return null;
  }

  /**
   * Sends [start, end) of the file on the socket. Resolves once every byte was accepted, or
   * with a fallback (nothing or a prefix sent) when splice cannot serve. Rejects with a
   * ZcSendError when the transfer failed part-way (the body is then incomplete). Reads through
   * `file.fd`, which the FileSender opened and checked (or the caller gave); it stays open, and
   * nothing in the kernel names it once this settles.
   */
  async send(socket: net.Socket, file: FileRef & { fd: number }, start: number, end: number): Promise<SpliceOutcome> {
    const fallback = (reason: FileFallbackReason, resumeAt = start): SpliceOutcome => ({ bytes: resumeAt - start, fallback: { reason, resumeAt } });
    if (this.unavailableReason !== null) return fallback('splice-unavailable');
    if (socketEligibility(socket).reason) return fallback('socket-ineligible');
    const lease = this.lease();
    if (typeof lease === 'string') return fallback(lease);

    this.active++;
    // Until a transfer ran the pipe is untouched; after one, only its result says it is empty.
    let pipeEmpty = true;
    let slot = -1;
    try {
      await untilLibuvIdle(socket);
      // From here to the first submit, synchronous: the fd is checked and put in the slot in one go.
      const fd = currentFd(socket);
      if (fd < 0 || !socket.writable) throw socketClosed();
      slot = lease.slots.take(fd);
      if (slot < 0) return fallback(slot === -EBUSY ? 'splice-busy' : 'splice-unavailable');
      const transfer = new SpliceTransfer({
        raw: lease.raw,
        socket,
        slot,
        pipe: lease.pipe,
        fileFd: file.fd,
        path: file.path,
        start,
        end,
        pairsPerChain: this.pairsPerChain,
        counters: this.counters,
      });
      // libuv closing the fd cancels nothing (the slot keeps the socket alive): without this a chain
      // waiting on a stalled peer would hold the connection open.
      const onClose = (): void => transfer.abort(socketClosed());
      socket.once('close', onClose);
      pipeEmpty = false;
      try {
        const result = await transfer.run();
        pipeEmpty = result.pipeEmpty;
        if (result.resumeAt !== null) return fallback('splice-refused', result.resumeAt);
        return { bytes: result.sent, fallback: null };
      } finally {
        socket.off('close', onClose);
      }
    } finally {
      // Every op of the transfer has completed: nothing in the kernel names the slot, pipe or file.
      if (slot >= 0) lease.slots.give(slot);
      this.pool!.release(lease.pipe, pipeEmpty);
      this.active--;
    }
  }

  /** Closes idle pipes; pipes of responses in flight close as those settle. */
  close(): void {
    this.pool?.close();
  }

  stats(): SpliceStats {
    const pool = this.pool?.stats() ?? { open: 0, idle: 0 };
    const raw = this.sender.ringOps();
    return {
      activeSends: this.active,
      pipes: pool.open,
      idlePipes: pool.idle,
      slotsInUse: raw ? SocketSlots.of(raw.ring).inUse : 0,
      ...this.counters,
    };
  }

  private lease(): Lease | FileFallbackReason {
    const raw = this.sender.ringOps();
    if (!raw) return 'splice-unavailable';
    const pipe = this.pool!.acquire();
    if (typeof pipe === 'number') return pipe === -EBUSY ? 'splice-busy' : 'splice-unavailable';
    return { raw, slots: SocketSlots.of(raw.ring), pipe };
  }
}

function nativePipes(): PipeSyscalls | null {
  const { binding } = load();
  if (!binding || typeof binding.pipe2 !== 'function') return null;
  return binding;
}
