import type { CompletionHandler, RingBackend } from './backend.js';
import { CANCEL_TAG_HI, IORING_CQE_F_MORE, IORING_CQE_F_NOTIF } from './constants.js';

/** One SQE as the fake ring recorded it. */
export interface FakeSqe {
  op: 'sendZc' | 'sendZcFixed' | 'send' | 'sendtoZc' | 'cancel' | 'splice' | 'pollAdd' | 'recvMultishot';
  fd: number;
  userData: number;
  offset: number;
  length: number;
  msgFlags: number;
  zcFlags: number;
  /** The bytes the op names, captured at queue time. */
  buf: Uint8Array | null;
  submitted: boolean;
  port?: number;
  address?: string;
  bufIndex?: number;
  /** splice: the input fd (or slot); `fd` is the output. */
  fdIn?: number;
  /** recvMultishot: the provided-buffer group. */
  group?: number;
}

export interface FakeRingOptions {
  reportUsage?: boolean;
  /** Make the next queue calls fail with this -errno. */
  failQueueWith?: number;
  /** Make submit() return this instead of the count. */
  submitResult?: number;
  /** Make buffer registration fail with this -errno (e.g. -12 ENOMEM for RLIMIT_MEMLOCK). */
  failRegisterWith?: number;
  /** What registerBufRing returns when negative (e.g. -22 EINVAL for a kernel without provided buffers). */
  failBufRingWith?: number;
  /** What registerFileSlots returns (default 0). */
  registerFilesResult?: number;
}

/**
 * A ring that records SQEs and lets a test deliver any CQE sequence, legal or not, through the
 * same completion path the native ring uses. For state-machine tests and fault injection.
 */
export class FakeRing implements RingBackend {
  readonly sqes: FakeSqe[] = [];
  readonly features: RingBackend['features'];
  readonly description = 'fake';
  overflow = 0;
  refs = 0;
  closed = false;
  private readonly cqes = new Int32Array(4 * 1024);
  private pending: Array<[number, number, number, number]> = [];

  constructor(
    private readonly onCompletions: CompletionHandler,
    public options: FakeRingOptions = {},
  ) {
    this.features = { reportUsage: options.reportUsage ?? true, fixedBuffers: true, sendmsgZc: true };
  }

  static factory(options: FakeRingOptions = {}): { factory: (h: CompletionHandler) => FakeRing; ring: () => FakeRing } {
    let made: FakeRing | null = null;
    return {
      factory: (h) => (made = new FakeRing(h, options)),
      ring: () => {
        if (!made) throw new Error('the fake ring was not opened');
        return made;
      },
    };
  }

  private queue(sqe: Omit<FakeSqe, 'submitted'>): number {
    if (this.closed) return -77; // EBADFD
    if (this.options.failQueueWith) return this.options.failQueueWith;
    this.sqes.push({ ...sqe, submitted: false });
    return 0;
  }

  sendZc(fd: number, buf: Uint8Array, offset: number, length: number, msgFlags: number, zcFlags: number, userData: number): number {
    return this.queue({ op: 'sendZc', fd, userData, offset, length, msgFlags, zcFlags, buf: buf.subarray(offset, offset + length) });
  }

  /** Registered buffers by slot, as registerBufferSlots/updateBuffer left them. */
  buffers: Array<Uint8Array | null> | null = null;

  registerBufferSlots(count: number): number {
    if (this.options.failRegisterWith) return this.options.failRegisterWith;
    this.buffers = new Array<Uint8Array | null>(count).fill(null);
    return 0;
  }

  updateBuffer(index: number, buf: Uint8Array | null): number {
    if (this.options.failRegisterWith) return this.options.failRegisterWith;
    if (!this.buffers || index < 0 || index >= this.buffers.length) return -22; // EINVAL
    this.buffers[index] = buf;
    return 0;
  }

  sendZcFixed(fd: number, bufIndex: number, buf: Uint8Array, offset: number, length: number, msgFlags: number, zcFlags: number, userData: number): number {
    if (this.buffers?.[bufIndex] !== buf) return -14; // EFAULT: not the registered buffer
    return this.queue({ op: 'sendZcFixed', fd, userData, offset, length, msgFlags, zcFlags, buf: buf.subarray(offset, offset + length), bufIndex });
  }

  send(fd: number, buf: Uint8Array, offset: number, length: number, msgFlags: number, userData: number): number {
    return this.queue({ op: 'send', fd, userData, offset, length, msgFlags, zcFlags: 0, buf: buf.subarray(offset, offset + length) });
  }

  sendtoZc(fd: number, buf: Uint8Array, offset: number, length: number, msgFlags: number, zcFlags: number, port: number, address: string, userData: number): number {
    const rc = this.queue({ op: 'sendtoZc', fd, userData, offset, length, msgFlags, zcFlags, buf: buf.subarray(offset, offset + length), port, address });
    if (rc === 0) this.submit();
    return rc;
  }

  splice(fdIn: number, offIn: number, fdOut: number, _offOut: number, length: number, spliceFlags: number, sqeFlags: number, userData: number): number {
    // fd is the output; offset the input offset; flags ride in msgFlags/zcFlags for inspection.
    return this.queue({ op: 'splice', fd: fdOut, fdIn, userData, offset: offIn, length, msgFlags: spliceFlags, zcFlags: sqeFlags, buf: null });
  }

  /** POLL_ADD: events ride in msgFlags, SQE flags in zcFlags. */
  pollAdd(fd: number, events: number, sqeFlags: number, userData: number): number {
    return this.queue({ op: 'pollAdd', fd, userData, offset: 0, length: 0, msgFlags: events, zcFlags: sqeFlags, buf: null });
  }

  /** The registered-file table: slot -> fd (absent = empty), once registerFileSlots succeeded. */
  files: Map<number, number> | null = null;
  fileSlotCount = 0;

  registerFileSlots(count: number): number {
    if (this.closed) return -77; // EBADFD
    if (this.files) return -16; // EBUSY: one table per ring
    const rc = this.options.registerFilesResult ?? 0;
    if (rc < 0) return rc;
    this.files = new Map();
    this.fileSlotCount = count;
    return 0;
  }

  updateFile(index: number, fd: number): number {
    if (this.closed) return -77;
    if (!this.files) return -6; // ENXIO: no table
    if (index < 0 || index >= this.fileSlotCount) return -22; // EINVAL
    if (fd === -1) this.files.delete(index);
    else this.files.set(index, fd);
    return 0;
  }

  /** Provided-buffer groups as registerBufRing left them, with the ids the kernel may use. */
  readonly bufRings = new Map<number, { pool: Uint8Array; size: number; free: number[]; recycled: Uint16Array | null }>();

  registerBufRing(group: number, pool: Uint8Array, bufferSize: number, recycled?: Uint16Array): number {
    if (this.closed) return -77;
    if (this.options.failBufRingWith) return this.options.failBufRingWith;
    if (this.bufRings.has(group)) return -17; // EEXIST
    const count = pool.byteLength / bufferSize;
    this.bufRings.set(group, { pool, size: bufferSize, free: Array.from({ length: count }, (_, i) => i), recycled: recycled ?? null });
    return 0;
  }

  /** As the native ring does after each batch and before each submit: take the queued ids. */
  private takeRecycled(): void {
    for (const [group, ring] of this.bufRings) {
      const queue = ring.recycled;
      if (!queue) continue;
      for (let i = 1; i <= queue[0]!; i++) this.recycleBuffer(group, queue[i]!);
      queue[0] = 0;
    }
  }

  recycleBuffer(group: number, bufferId: number): number {
    const ring = this.bufRings.get(group);
    if (!ring) return -2; // ENOENT
    if (ring.free.includes(bufferId)) throw new Error(`buffer ${bufferId} of group ${group} recycled twice`);
    ring.free.push(bufferId);
    return 0;
  }

  unregisterBufRing(group: number): number {
    return this.bufRings.delete(group) ? 0 : -2;
  }

  recvMultishot(fd: number, group: number, userData: number): number {
    return this.queue({ op: 'recvMultishot', fd, userData, offset: 0, length: 0, msgFlags: 0, zcFlags: 0, buf: null, group });
  }

  /**
   * The kernel receiving `data` for multishot receive `userData` (of `group`): it takes a free
   * buffer, copies the bytes in and queues the CQE (F_MORE unless `more` is false). With no free
   * buffer it queues the receive's end instead (-ENOBUFS) and returns -1; else the buffer id.
   */
  received(userData: number, group: number, data: Uint8Array, more = true): number {
    const ring = this.bufRings.get(group);
    if (!ring) throw new Error(`no provided-buffer group ${group}`);
    const id = ring.free.shift();
    if (id === undefined) {
      this.cqe(userData, -105, 0);
      return -1;
    }
    if (data.byteLength > ring.size) throw new Error('one CQE carries at most one buffer');
    ring.pool.set(data, id * ring.size);
    this.cqe(userData, data.byteLength, (id << 16) | 1 | (more ? IORING_CQE_F_MORE : 0));
    return id;
  }

  cancel(userData: number): number {
    return this.queue({ op: 'cancel', fd: -1, userData, offset: 0, length: 0, msgFlags: 0, zcFlags: 0, buf: null });
  }

  submit(): number {
    this.takeRecycled();
    if (this.options.submitResult !== undefined) return this.options.submitResult;
    let n = 0;
    for (const sqe of this.sqes) {
      if (!sqe.submitted) {
        sqe.submitted = true;
        n++;
      }
    }
    return n;
  }

  ref(): void {
    this.refs = 1;
  }

  unref(): void {
    this.refs = 0;
  }

  close(): void {
    this.closed = true;
  }

  /** SQEs of these kinds that reached submit(), oldest first. */
  submitted(op?: FakeSqe['op']): FakeSqe[] {
    return this.sqes.filter((s) => s.submitted && (op === undefined || s.op === op));
  }

  /** Queue a raw CQE; it is delivered by flush(). */
  cqe(userData: number, res: number, flags: number, userDataHi = 0): this {
    this.pending.push([userData, userDataHi, res, flags]);
    return this;
  }

  /** First CQE: bytes (or -errno), with F_MORE unless `more` is false. */
  first(userData: number, res: number, more = true): this {
    return this.cqe(userData, res, more ? IORING_CQE_F_MORE : 0);
  }

  /** Notification CQE; `usage` is the res flag word (e.g. IORING_NOTIF_USAGE_ZC_COPIED). */
  notif(userData: number, usage = 0): this {
    return this.cqe(userData, usage | 0, IORING_CQE_F_NOTIF);
  }

  /** The completion of an ASYNC_CANCEL request the Sender made. */
  cancelDone(target: number, res = 0): this {
    return this.cqe(target, res, 0, CANCEL_TAG_HI);
  }

  /** Deliver queued CQEs as one batch, as the native reaper would. */
  flush(): void {
    const batch = this.pending;
    this.pending = [];
    batch.forEach(([lo, hi, res, flags], i) => this.cqes.set([lo, hi, res, flags], i * 4));
    this.onCompletions(this.cqes, batch.length);
    this.takeRecycled();
  }
}
