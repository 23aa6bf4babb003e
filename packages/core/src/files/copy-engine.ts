import type * as net from 'node:net';
import { ZcSendError } from '../errors.js';
import type { Sender } from '../sender.js';
import type { BufferPool } from './buffer-pool.js';
import type { ByteBudget } from './byte-budget.js';
import { fileTruncated, readAt } from './file-io.js';
import type { PendingWork } from './pending-work.js';
import type { FileRef } from './types.js';

/** Reads up to this size (or half a chunk) get a buffer of their own size, not a whole pooled chunk. */
const SMALL_READ = 64 * 1024;

export interface CopyEngineContext {
  sender: Sender;
  pool: BufferPool;
  budget: ByteBudget;
  work: PendingWork;
}

interface Chunk {
  buffer: Buffer;
  /** Returns the buffer and its bytes to the budget; call once the send using it is released. */
  giveBack: () => void;
}

/**
 * The copy engine: positioned reads into pooled buffers, each sent with `sender.send`. One read
 * runs ahead while the previous chunk is being sent (double buffering), so the disk and the
 * socket overlap. Resolves with the byte count once every byte was accepted. Reads through
 * `file.fd`, which the FileSender opened and checked (or the caller gave); it stays open. Each
 * read is awaited before the next step, so none is left in a pool thread when this settles and
 * the fd may be closed then.
 */
export async function sendByCopy(ctx: CopyEngineContext, socket: net.Socket, file: FileRef & { fd: number }, start: number, end: number): Promise<number> {
  const { fd } = file;
  let position = start;
  let previousSent: Promise<number> | null = null;
  while (position < end) {
    const length = Math.min(ctx.pool.bufferSize, end - position);
    const chunk = await takeChunk(ctx, socket, length);
    try {
      throwIfClosed(socket);
      const n = await readAt(fd, chunk.buffer, length, position, file.path);
      if (n < length) throw fileTruncated(file.path, position + n);
      throwIfClosed(socket);
    } catch (err) {
      chunk.giveBack();
      throw err;
    }
    const handle = ctx.sender.send(socket, chunk.buffer.subarray(0, length));
    ctx.work.untilReleased(handle.released, chunk.giveBack);
    // The next read overlaps this send; waiting for the one before keeps it to one read ahead.
    if (previousSent) await previousSent;
    previousSent = handle.sent;
    position += length;
  }
  if (previousSent) await previousSent;
  return end - start;
}

async function takeChunk(ctx: CopyEngineContext, socket: net.Socket, length: number): Promise<Chunk> {
  const { pool, budget } = ctx;
  const pooled = length > Math.min(SMALL_READ, pool.bufferSize / 2);
  const charge = pooled ? pool.bufferSize : length;
  if (!budget.tryAcquire(charge)) {
    // Checked first: a socket that closed before we subscribe would never wake the waiter.
    throwIfClosed(socket);
    const waiter = budget.enqueue(charge);
    const onClose = (): void => void budget.abandon(waiter, socketClosedError());
    socket.once('close', onClose);
    try {
      await waiter.granted;
    } finally {
      socket.off('close', onClose);
    }
  }
  const buffer = pooled ? pool.take() : Buffer.allocUnsafe(length);
  let given = false;
  return {
    buffer,
    giveBack: () => {
      if (given) return;
      given = true;
      if (pooled) pool.give(buffer);
      budget.release(charge);
    },
  };
}

function socketClosedError(): ZcSendError {
  return new ZcSendError('ZCSEND_ERR_SOCKET_CLOSED', 'the socket closed before the file was sent');
}

/** Stops reading once the peer is gone (the Sender would refuse the send anyway). */
function throwIfClosed(socket: net.Socket): void {
  if (socket.destroyed) throw socketClosedError();
}
