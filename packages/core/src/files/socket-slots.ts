import { constants as osConstants } from 'node:os';
import type { RingBackend } from '../backend.js';

const { EBUSY, ENOTSUP } = osConstants.errno;

/** Registered-file slots per ring: enough for as many concurrent splice responses. */
export const DEFAULT_SOCKET_SLOTS = 1024;

/**
 * The ring's registered-file table, used to name sockets in linked splice chains.
 *
 * A linked (or always-async, like splice) SQE resolves its fd only when it starts. By then libuv
 * may have closed a raw fd and a new connection may hold its number, so the bytes would go to
 * another client (DESIGN.md "Sockets owned by libuv"). A slot holds a reference to the socket
 * itself: ops that name the slot reach the connection it was filled with, whatever happens to the
 * number. The table is created once per ring (the kernel allows one), lazily, and shared by every
 * FileSender on that ring.
 */
export class SocketSlots {
  private static readonly tables = new WeakMap<RingBackend, SocketSlots>();

  /** The table of this ring, created (but not yet registered) on first use. */
  static of(ring: RingBackend): SocketSlots {
    let table = SocketSlots.tables.get(ring);
    if (!table) {
      table = new SocketSlots(ring, DEFAULT_SOCKET_SLOTS);
      SocketSlots.tables.set(ring, table);
    }
    return table;
  }

  /** 0 once registered, -errno when the kernel refused (remembered: never retried), null before. */
  private registered: number | null = null;
  private readonly free: number[] = [];
  private nextUnused = 0;
  private used = 0;

  constructor(
    private readonly ring: RingBackend,
    readonly size: number,
  ) {}

  get inUse(): number {
    return this.used;
  }

  /** Registers the sparse table on first call: 0, or the kernel's -errno (then splice cannot run on this ring). */
  ensureRegistered(): number {
    if (this.registered === null) {
      this.registered = this.ring.registerFileSlots && this.ring.updateFile ? this.ring.registerFileSlots(this.size) : -ENOTSUP;
    }
    return this.registered;
  }

  /**
   * Puts the socket `fd` in a free slot and returns the slot, or -errno (-EBUSY when all are
   * taken). Call synchronously right after checking that `fd` is still the socket's fd.
   */
  take(fd: number): number {
    const registered = this.ensureRegistered();
    if (registered < 0) return registered;
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.nextUnused >= this.size) return -EBUSY;
      slot = this.nextUnused++;
    }
    const rc = this.ring.updateFile!(slot, fd);
    if (rc < 0) {
      this.free.push(slot);
      return rc;
    }
    this.used++;
    return slot;
  }

  /**
   * Empties the slot, which drops the ring's reference to the socket (a socket libuv closed
   * meanwhile is closed for real now). Only once no op naming the slot can still start.
   */
  give(slot: number): void {
    this.ring.updateFile!(slot, -1);
    this.free.push(slot);
    this.used--;
  }
}
