import type * as net from 'node:net';
import type * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { ZcSendError } from '../errors.js';
import type { ResolvedSenderOptions } from '../options.js';
import type { FallbackReason } from '../sockets.js';
import type { SenderStats } from '../stats.js';
import { countFallback, type JobTracker } from './jobs.js';
import type { Job } from './records.js';

/** Why a send took the copy path when there is no ring: asked for, or not possible. */
export function copyReason(backend: ResolvedSenderOptions['backend']): FallbackReason {
  return backend === 'copy' ? 'disabled' : 'unavailable';
}

/** Sends through libuv (socket.write, fs.write, dgram send): the copy backend and small bodies. */
export class CopyPath {
  constructor(
    private readonly counters: SenderStats,
    private readonly jobs: JobTracker,
  ) {}

  sendSocket(job: Job, socket: net.Socket, reason: FallbackReason): void {
    job.report.path = 'copy';
    countFallback(this.counters, job, reason);
    this.counters.copyWrites++;
    // libuv writes straight from `data` and holds it until the callback: sent and released coincide.
    socket.write(job.data, (err) => {
      // Node 20 calls back without an error when the socket was destroyed mid-write (peer reset or
      // local destroy): the bytes did not all go out, so a destroyed socket counts as a failure.
      if (!err && socket.destroyed) {
        const cause = socket.errored;
        if (cause) return this.finish(job, cause);
        return this.jobs.fail(job, new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket closed before the send finished'));
      }
      this.finish(job, err ?? undefined);
    });
  }

  sendFd(job: Job, fd: number, reason: FallbackReason): void {
    job.report.path = 'copy';
    countFallback(this.counters, job, reason);
    this.counters.copyWrites++;
    const writeFrom = (offset: number): void => {
      fs.write(fd, job.data, offset, job.end - offset, null, (err, written) => {
        if (err && (err as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(() => writeFrom(offset), 1);
          return;
        }
        if (err) return this.finish(job, err);
        job.acked += written;
        this.counters.bytesSent += written;
        this.counters.bytesPlain += written;
        if (job.acked < job.end) writeFrom(offset + written);
        else this.finish(job, undefined, true);
      });
    };
    writeFrom(0);
  }

  /** One datagram through dgram. */
  sendDatagram(job: Job, socket: dgram.Socket, port: number, address: string, reason: FallbackReason): void {
    job.report.path = 'copy';
    countFallback(this.counters, job, reason);
    this.counters.copyWrites++;
    socket.send(job.data, port, address, (err) => this.finish(job, err));
  }

  private finish(job: Job, err: Error | null | undefined, counted = false): void {
    if (err) {
      const errno = (err as NodeJS.ErrnoException).errno;
      this.jobs.fail(
        job,
        new ZcSendError('ZCSEND_ERR_SEND_FAILED', `write failed: ${err.message}`, {
          cause: err,
          errno: errno === undefined ? undefined : Math.abs(errno),
          syscall: (err as NodeJS.ErrnoException).syscall ?? 'write',
        }),
      );
      return;
    }
    if (!counted) {
      job.acked = job.end;
      this.counters.bytesSent += job.end;
      this.counters.bytesPlain += job.end;
    }
    this.jobs.settle(job);
  }
}
