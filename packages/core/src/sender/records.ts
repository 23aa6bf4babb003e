import type * as net from 'node:net';
import type { ZcSendError } from '../errors.js';
import type { FallbackReason } from '../sockets.js';
import type { SendReport } from './public-types.js';

/** One send(): its bytes, its progress, and the two promises it settles. */
export interface Job {
  target: Target | null;
  data: Uint8Array;
  end: number;
  /** Next byte to hand to the kernel. */
  next: number;
  /** Bytes the kernel accepted. */
  acked: number;
  liveOps: number;
  forcePlain: boolean;
  /** Registered-buffer slot `data` lies in, or -1. */
  fixedSlot: number;
  settled: boolean;
  failed: boolean;
  report: SendReport;
  resolveSent: (bytes: number) => void;
  rejectSent: (err: ZcSendError) => void;
  resolveReleased: (report: SendReport) => void;
}

/** One ring send (SEND_ZC or plain SEND) of a byte range of a job; lives until released. */
export interface Op {
  id: number;
  job: Job;
  target: Target | null;
  zc: boolean;
  offset: number;
  length: number;
  gotFirst: boolean;
  awaitingNotif: boolean;
  accepted: number;
}

/** Per-socket state: a FIFO of sends and at most one op in flight, so bytes keep their order. */
export interface Target {
  socket: net.Socket | null;
  fd: number;
  peer: string | undefined;
  queue: Job[];
  active: Op | null;
  waitingLibuv: boolean;
  /** Set once this socket should use plain sends, with the reason. */
  plainReason: FallbackReason | null;
  liveOps: number;
  closed: boolean;
}

export function newTarget(socket: net.Socket | null, fd: number, peer: string | undefined): Target {
  return { socket, fd, peer, queue: [], active: null, waitingLibuv: false, plainReason: null, liveOps: 0, closed: false };
}
