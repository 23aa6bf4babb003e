import { constants as osConstants } from 'node:os';
import type { RingBackend } from '../backend.js';
import { ZcSendError } from '../errors.js';
import type { SenderStats } from '../stats.js';
import { countFallback } from './jobs.js';

const { ENOMEM } = osConstants.errno;
/** Registered-buffer table size, created sparse on first register(). */
const BUFFER_SLOTS = 1024;

/** The ring's registered (fixed) buffers by slot: pinned once, then sent from with SEND_ZC. */
export class RegisteredBuffers {
  /** Registered buffers by slot (null: free); the table is created on first use. */
  private slots: Array<Uint8Array | null> | null = null;
  private readonly freeSlots: number[] = [];

  constructor(private readonly counters: SenderStats) {}

  /** Register `buf` and return its slot, or -1 when the ring cannot (see Sender.registerBuffer). */
  register(ring: RingBackend, buf: Uint8Array): number {
    if (!ring.features.fixedBuffers || !ring.registerBufferSlots || !ring.updateBuffer) return -1;
    if (!this.slots) {
      if (ring.registerBufferSlots(BUFFER_SLOTS) < 0) return -1;
      this.slots = new Array<Uint8Array | null>(BUFFER_SLOTS).fill(null);
      for (let i = BUFFER_SLOTS - 1; i >= 0; i--) this.freeSlots.push(i);
    }
    const slot = this.freeSlots.pop();
    if (slot === undefined) return -1;
    const rc = ring.updateBuffer(slot, buf);
    if (rc < 0) {
      this.freeSlots.push(slot);
      countFallback(this.counters, null, rc === -ENOMEM ? 'memlock' : 'unsupported');
      return -1;
    }
    this.slots[slot] = buf;
    return slot;
  }

  /** Free the slot; `ring` (when given) drops its reference once no op uses the buffer. */
  unregister(slot: number, ring: RingBackend | null): void {
    if (!this.slots || this.slots[slot] === undefined || this.slots[slot] === null) return;
    this.slots[slot] = null;
    ring?.updateBuffer?.(slot, null);
    this.freeSlots.push(slot);
  }

  /** The buffer registered at `slot`, or null. */
  at(slot: number): Uint8Array | null {
    return this.slots?.[slot] ?? null;
  }

  /** `slot`, after checking that `data` lies inside the buffer registered there. */
  checkFixed(slot: number, data: Uint8Array): number {
    const base = Number.isInteger(slot) ? this.slots?.[slot] : null;
    if (!base) throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', `fixedBuffer ${slot} is not a registered buffer slot`);
    const start = data.byteOffset - base.byteOffset;
    if (data.buffer !== base.buffer || start < 0 || start + data.byteLength > base.byteLength) {
      throw new ZcSendError('ZCSEND_ERR_INVALID_ARG', `data does not lie inside the buffer registered at slot ${slot}`);
    }
    return slot;
  }
}
