import type * as http from 'node:http';
import type * as net from 'node:net';
import { keepsConnection, type Sender, type StallCheck } from '@zcsend/core';

/** How long close() lets connections still holding kernel buffers drain before resetting them. */
export const CLOSE_GRACE_MS = 2000;

/**
 * The connections whose bodies went through the Sender. A client that stops reading leaves its
 * last body referenced by the kernel after the response finished; closing that connection with a
 * FIN (Node's timeout, Fastify's close) keeps the buffers pinned in the orphaned socket for as long
 * as the client stays, and close() would wait for their notifications. A reset releases them.
 * A client that reads slowly but steadily is told apart by the kernel's count of acknowledged
 * bytes (core's StallCheck) and kept.
 */
export class HeldConnections {
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly sender: Sender,
    private readonly stalls: StallCheck,
  ) {}

  add(socket: net.Socket): void {
    if (this.sockets.has(socket)) return;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /**
   * The socket timed out. A connection of ours with a body still in progress or held by the
   * kernel is kept (timer re-armed) while its peer keeps acknowledging bytes; a stalled one the
   * kernel holds buffers for is cancelled and reset. False when the caller should apply its
   * default (a FIN), which is also what an idle keep-alive connection gets.
   */
  onTimeout(socket: net.Socket): boolean {
    if (!this.sockets.has(socket)) return false;
    const held = this.sender.holds(socket);
    const res = (socket as { _httpMessage?: http.ServerResponse | null })._httpMessage;
    if (!held && !(res && !res.writableFinished)) return false;
    if (keepsConnection(this.stalls.onTimeout(socket))) return true;
    return this.resetIfHeld(socket);
  }

  /** Cancels and resets the connection if the kernel still holds its buffers; true if it did. */
  resetIfHeld(socket: net.Socket): boolean {
    if (!this.sender.holds(socket)) return false;
    this.sender.cancel(socket);
    socket.resetAndDestroy();
    return true;
  }

  /** Waits up to `graceMs` for held connections to let go, then resets the ones that still hold. */
  async release(graceMs: number): Promise<number> {
    const deadline = Date.now() + graceMs;
    while (this.heldSockets().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    let reset = 0;
    for (const socket of this.heldSockets()) if (this.resetIfHeld(socket)) reset++;
    return reset;
  }

  private heldSockets(): net.Socket[] {
    return [...this.sockets].filter((s) => !s.destroyed && this.sender.holds(s));
  }
}
