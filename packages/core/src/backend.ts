import * as os from 'node:os';
import { load, type NativeProbe } from '@zcsend/native';

/**
 * Called with the shared CQE array: `count` records of [userDataLo, userDataHi, res, flags], and
 * the ring's cumulative CQ overflow count as of this batch when the ring reports it (else read
 * `overflow`).
 */
export type CompletionHandler = (cqes: Int32Array, count: number, overflow?: number) => void;

/**
 * The seam between the Sender's state machine and a ring. The native binding implements it;
 * tests and fault injection use a fake that delivers CQEs in any order. Every op returns 0 once
 * its SQE is queued, or -errno. Nothing is handed to the kernel before `submit()`, except the
 * sendto form, which submits itself.
 */
export interface RingBackend {
  readonly features: { reportUsage: boolean; fixedBuffers: boolean; sendmsgZc: boolean };
  /** Cumulative CQ overflow events the ring has seen. */
  readonly overflow: number;
  /** Describes the ring setup (e.g. "SINGLE_ISSUER|DEFER_TASKRUN"), for logs and stats. */
  readonly description: string;
  sendZc(fd: number, buf: Uint8Array, offset: number, length: number, msgFlags: number, zcFlags: number, userData: number): number;
  send(fd: number, buf: Uint8Array, offset: number, length: number, msgFlags: number, userData: number): number;
  /** SEND_ZC from the buffer registered at `bufIndex` (`buf`); offset/length inside it. Optional. */
  sendZcFixed?(fd: number, bufIndex: number, buf: Uint8Array, offset: number, length: number, msgFlags: number, zcFlags: number, userData: number): number;
  registerBufferSlots?(count: number): number;
  updateBuffer?(index: number, buf: Uint8Array | null): number;
  sendtoZc(fd: number, buf: Uint8Array, offset: number, length: number, msgFlags: number, zcFlags: number, port: number, address: string, userData: number): number;
  cancel(userData: number): number;
  /** IORING_OP_SPLICE (see @zcsend/native). Optional: fakes may leave it out. */
  splice?(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number, spliceFlags: number, sqeFlags: number, userData: number): number;
  /** One-shot IORING_OP_POLL_ADD (res = ready mask); with IOSQE_FIXED_FILE `fd` is a slot. Optional. */
  pollAdd?(fd: number, events: number, sqeFlags: number, userData: number): number;
  registerFileSlots?(count: number): number;
  updateFile?(index: number, fd: number): number;
  /** Provided-buffer ring `group` over `pool` (see @zcsend/native). Optional, like the three after it. */
  /** `recycled`: ids queued there ([count, id...]) are handed back after each batch and before each submit. */
  registerBufRing?(group: number, pool: Uint8Array, bufferSize: number, recycled?: Uint16Array): number;
  recycleBuffer?(group: number, bufferId: number): number;
  unregisterBufRing?(group: number): number;
  /** Multishot receive into buffers of `group`: a CQE per chunk (F_MORE while armed). */
  recvMultishot?(fd: number, group: number, userData: number): number;
  submit(): number;
  ref(): void;
  unref(): void;
  close(): void;
}

export type RingBackendFactory = (onCompletions: CompletionHandler) => RingBackend;

export interface ProbeResult {
  available: boolean;
  reason: string | null;
  kernel: string;
  features: { sendZc: boolean; sendmsgZc: boolean; reportUsage: boolean; fixedBuffers: boolean };
}

let cachedProbe: ProbeResult | null = null;

/** What this machine offers: whether io_uring SEND_ZC is usable and, if not, why. Cached per process. */
export function probe(): ProbeResult {
  if (cachedProbe) return cachedProbe;
  const loaded = load();
  if (!loaded.binding) {
    cachedProbe = {
      available: false,
      reason: `native addon unavailable: ${loaded.reason}`,
      kernel: kernelRelease(),
      features: { sendZc: false, sendmsgZc: false, reportUsage: false, fixedBuffers: false },
    };
    return cachedProbe;
  }
  const p: NativeProbe = loaded.binding.probe();
  cachedProbe = {
    available: p.available,
    reason: p.reason,
    kernel: p.kernel,
    features: {
      sendZc: p.features.sendZc,
      sendmsgZc: p.features.sendmsgZc,
      reportUsage: p.features.reportUsage,
      fixedBuffers: p.features.fixedBuffers,
    },
  };
  return cachedProbe;
}

function kernelRelease(): string {
  return process.platform === 'linux' ? os.release() : `${process.platform} ${os.release()}`;
}

/** Opens the native ring, or says why it cannot. Never throws. */
export function openNativeRing(
  onCompletions: CompletionHandler,
  entries: number,
): { ring: RingBackend; reason: null } | { ring: null; reason: string } {
  const p = probe();
  if (!p.available) return { ring: null, reason: p.reason ?? 'io_uring unavailable' };
  const { binding } = load();
  if (!binding) return { ring: null, reason: 'native addon unavailable' };
  try {
    let native: InstanceType<typeof binding.Ring> | null = null;
    // The shared array, read once: only a detached one (length 0) needs the ring's new one.
    let cqes: Int32Array | null = null;
    native = new binding.Ring({ entries }, (count, overflow) => {
      if (cqes === null || cqes.length === 0) cqes = native!.cqes;
      onCompletions(cqes, count, overflow);
    });
    const ring = native;
    const features = { reportUsage: p.features.reportUsage, fixedBuffers: p.features.fixedBuffers, sendmsgZc: p.features.sendmsgZc };
    const backend: RingBackend = {
      features,
      get overflow() {
        return ring.overflow;
      },
      description: ring.setupFlags.join('|') || 'default',
      sendZc: (fd, buf, offset, length, msgFlags, zcFlags, userData) => ring.sendZc(fd, buf, offset, length, msgFlags, zcFlags, userData),
      send: (fd, buf, offset, length, msgFlags, userData) => ring.send(fd, buf, offset, length, msgFlags, userData),
      sendZcFixed: (fd, bufIndex, buf, offset, length, msgFlags, zcFlags, userData) =>
        ring.sendZcFixed(fd, bufIndex, buf, offset, length, msgFlags, zcFlags, userData),
      registerBufferSlots: (count) => ring.registerBufferSlots(count),
      updateBuffer: (index, buf) => ring.updateBuffer(index, buf),
      sendtoZc: (fd, buf, offset, length, msgFlags, zcFlags, port, address, userData) =>
        ring.sendtoZc(fd, buf, offset, length, msgFlags, zcFlags, port, address, userData),
      cancel: (userData) => ring.cancel(userData),
      splice: (fdIn, offIn, fdOut, offOut, length, spliceFlags, sqeFlags, userData) =>
        ring.splice(fdIn, offIn, fdOut, offOut, length, spliceFlags, sqeFlags, userData),
      pollAdd: (fd, events, sqeFlags, userData) => ring.pollAdd(fd, events, sqeFlags, userData),
      registerFileSlots: (count) => ring.registerFileSlots(count),
      updateFile: (index, fd) => ring.updateFile(index, fd),
      registerBufRing: (group, pool, bufferSize, recycled) => ring.registerBufRing(group, pool, bufferSize, recycled),
      recycleBuffer: (group, bufferId) => ring.recycleBuffer(group, bufferId),
      unregisterBufRing: (group) => ring.unregisterBufRing(group),
      recvMultishot: (fd, group, userData) => ring.recvMultishot(fd, group, userData),
      submit: () => ring.submit(),
      ref: () => ring.ref(),
      unref: () => ring.unref(),
      close: () => ring.close(),
    };
    return { ring: backend, reason: null };
  } catch (err) {
    return { ring: null, reason: `io_uring setup failed: ${(err as Error).message}` };
  }
}
