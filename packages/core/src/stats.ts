import type { FallbackReason } from './sockets.js';

/** Counters a Sender keeps. All byte counts are body bytes accepted by the kernel (or by libuv on the copy path). */
export interface SenderStats {
  backend: 'io_uring' | 'copy';
  /** Ring ops (SEND_ZC and plain SEND) handed to the kernel. */
  opsSubmitted: number;
  /** Ops whose first CQE arrived (bytes accepted, or an error). */
  opsSent: number;
  /** Ops whose buffer the kernel let go: notification in, or no notification owed. */
  opsReleased: number;
  /** Ops whose first CQE was an error (cancellations included). */
  opsFailed: number;
  /** SEND_ZC ops (each owes at most one notification). */
  zcOpsSubmitted: number;
  /** SEND_ZC ops that used a registered buffer. */
  fixedOpsSubmitted: number;
  /** Notification CQEs received. */
  notifications: number;
  bytesSent: number;
  /** Bytes sent by SEND_ZC whose notification did not report a copy. */
  bytesZeroCopy: number;
  /** Bytes sent by SEND_ZC whose notification said ZC_COPIED. */
  bytesCopied: number;
  /** Bytes sent by plain ring sends or by libuv writes (the copy path). */
  bytesPlain: number;
  /** Writes that went through libuv (`socket.write` / `dgram.send`). */
  copyWrites: number;
  inFlightOps: number;
  /** Bytes of buffers the kernel may still read. */
  pinnedBytes: number;
  pendingNotifications: number;
  cancellations: number;
  /** CQEs that broke the SEND_ZC contract (unknown user_data, duplicate first CQE, stray notification). */
  violations: number;
  cqOverflows: number;
  submitErrors: number;
  /** Sends (or sockets, for adaptive verdicts) that did not use SEND_ZC, by reason. */
  fallbacks: Partial<Record<FallbackReason, number>>;
}

export function emptyStats(backend: 'io_uring' | 'copy'): SenderStats {
  return {
    backend,
    opsSubmitted: 0,
    opsSent: 0,
    opsReleased: 0,
    opsFailed: 0,
    zcOpsSubmitted: 0,
    fixedOpsSubmitted: 0,
    notifications: 0,
    bytesSent: 0,
    bytesZeroCopy: 0,
    bytesCopied: 0,
    bytesPlain: 0,
    copyWrites: 0,
    inFlightOps: 0,
    pinnedBytes: 0,
    pendingNotifications: 0,
    cancellations: 0,
    violations: 0,
    cqOverflows: 0,
    submitErrors: 0,
    fallbacks: {},
  };
}
