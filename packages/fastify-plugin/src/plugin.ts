import type * as net from 'node:net';
import * as fs from 'node:fs';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { FileSender, Sender, StallCheck, getSender, ZcSendError, type FileSenderStats, type SenderStats, type StallCheckStats } from '@zcsend/core';
import { armByteBody } from './byte-body.js';
import type { PluginContext } from './context.js';
import { FST_ZC_INVALID_OPTION, FST_ZC_INVALID_PAYLOAD, FST_ZC_URING_UNAVAILABLE } from './errors.js';
import { noGainBypass, replyConnection } from './eligibility.js';
import { armFileBody } from './file-body.js';
import { resolveOptions, type ResolvedOptions, type ZcSendOptions } from './options.js';
import { ReplyTracker, type ReplyStats } from './reply-stats.js';
import { CLOSE_GRACE_MS, HeldConnections } from './held-connections.js';

export interface ZcSendStats {
  backend: 'io_uring' | 'copy';
  fallbackReason: string | null;
  /** Replies: how many went out through the plugin, how many were left to Fastify and why. */
  replies: ReplyStats;
  /** The Sender's counters. With the shared thread Sender they include its other users. */
  sender: SenderStats;
  /** The file engines' counters, or null with `files: false`. */
  files: FileSenderStats | null;
  /** Socket timeouts of connections with a body in progress or held, by verdict (core's StallCheck). */
  timeouts: StallCheckStats;
}

/** `fastify.zcSend` */
export interface ZcSendApi {
  /** 'io_uring' when a ring is open, 'copy' otherwise. */
  readonly backend: 'io_uring' | 'copy';
  /** Why the copy backend is in use, or null. */
  readonly fallbackReason: string | null;
  /** Bodies smaller than this are left to Fastify. */
  readonly threshold: number;
  /** The core Sender replies go through. */
  readonly sender: Sender;
  stats(): ZcSendStats;
}

/** Payload types `reply.zcSend()` takes. */
export type ZcSendPayload = Buffer | Uint8Array | string;

/** Replies sent with `reply.zcSend()`: any non-empty body goes through the Sender, whatever the threshold. */
const forcedReplies = new WeakSet<FastifyReply>();

/** The plugin function (unwrapped); `zcSend` in index.ts is this wrapped with fastify-plugin. */
export async function zcSendPlugin(fastify: FastifyInstance, options: ZcSendOptions): Promise<void> {
  const resolved = resolveOptions(options);
  const { sender, ownsSender } = openSender(resolved);
  const stalls = new StallCheck({ minProgressBytes: resolved.minProgressBytes });
  let files: FileSender | null = null;
  try {
    files = resolved.files ? new FileSender({ ...resolved.files, sender }) : null;
  } catch (err) {
    if (ownsSender) await sender.destroy();
    throw asPluginError(err);
  }
  const tracker = new ReplyTracker();
  const held = new HeldConnections(sender, stalls);
  const ctx: PluginContext = { sender, files, threshold: resolved.threshold, tracker, held, closing: false };

  // A timed-out connection whose peer still acknowledges bytes is kept; a stalled one the kernel
  // still holds buffers for is reset, not FIN-closed (which would leave them pinned). Others get
  // Node's default (destroy) unless someone else listens.
  const onTimeout = (socket: net.Socket): void => {
    if (held.onTimeout(socket)) return;
    if (fastify.server.listenerCount('timeout') === 1) socket.destroy();
  };
  fastify.server.on('timeout', onTimeout);

  const api: ZcSendApi = {
    backend: sender.backend,
    fallbackReason: sender.fallbackReason,
    threshold: resolved.threshold,
    sender,
    stats: () => ({
      backend: sender.backend,
      fallbackReason: sender.fallbackReason,
      replies: tracker.snapshot(),
      sender: sender.stats(),
      files: files?.stats() ?? null,
      timeouts: stalls.stats(),
    }),
  };
  fastify.decorate('zcSend', api);

  fastify.decorateReply('zcSend', function zcSendReply(this: FastifyReply, data: ZcSendPayload) {
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      return this.send(new FST_ZC_INVALID_PAYLOAD(describe(data)));
    }
    forcedReplies.add(this);
    return this.send(data);
  });

  // Arms the reply; the decision is taken on the final payload when Fastify writes it, so hooks
  // added after this one still see (and may replace) the payload they would see without the plugin.
  const threshold = resolved.threshold;
  fastify.addHook('onSend', function zcSendOnSend(request, reply, payload, done) {
    if (payload === null || payload === undefined) return done();
    if (request.raw.method === 'HEAD') {
      tracker.bypass('no-body');
      return done();
    }
    const forced = forcedReplies.has(reply);
    let kind: 'bytes' | 'file' | null = null;
    if (typeof payload === 'string') {
      kind = forced || utf8AtLeast(payload, threshold) ? 'bytes' : null;
      if (!kind) tracker.bypass('below-threshold');
    } else if (payload instanceof Uint8Array) {
      kind = payload.byteLength >= threshold || forced ? 'bytes' : null;
      if (!kind) tracker.bypass('below-threshold');
    } else if (files !== null && payload instanceof fs.ReadStream) {
      kind = 'file';
    }
    if (kind) {
      // inject(), TLS and HTTP/2 replies are never armed, nor byte bodies the Sender cannot improve on.
      const connection = replyConnection(reply);
      const reason =
        typeof connection === 'string' ? connection : kind === 'bytes' && !forced ? noGainBypass(sender, connection) : null;
      if (reason) tracker.bypass(reason);
      else if (kind === 'bytes') armByteBody(ctx, reply, forced);
      else armFileBody(ctx, reply, payload as fs.ReadStream);
    }
    done();
  });

  fastify.addHook('onReady', function zcSendOnReady(done) {
    if (sender.backend === 'io_uring') {
      this.log.info(
        { zcSend: { backend: 'io_uring', ring: sender.ringDescription, adaptive: sender.adaptive, threshold } },
        `zcSend: io_uring zero-copy sends active for bodies >= ${threshold} bytes` +
          (sender.adaptive ? ' (adaptive: loopback peers keep plain writes)' : ' (adaptive off: SEND_ZC for every peer)'),
      );
    } else {
      this.log.info(
        { zcSend: { backend: 'copy', reason: sender.fallbackReason } },
        `zcSend: copy backend active, replies left to Fastify: ${sender.fallbackReason}`,
      );
    }
    done();
  });

  // Fastify closes the HTTP server before plugin onClose hooks run, so no reply starts after
  // this; wait for those still sending and for every notification, then let go of the ring.
  // Before Fastify closes idle connections with a FIN: give connections whose last body the kernel
  // still holds a short grace to drain, then reset them so their buffers are released.
  fastify.addHook('preClose', async function zcSendPreClose() {
    await held.release(CLOSE_GRACE_MS);
  });

  fastify.addHook('onClose', async function zcSendOnClose() {
    fastify.server.off('timeout', onTimeout);
    ctx.closing = true;
    await tracker.whenIdle();
    await files?.close();
    if (ownsSender) await sender.close();
  });
}

function openSender(resolved: ResolvedOptions): { sender: Sender; ownsSender: boolean } {
  if (resolved.sender) return { sender: resolved.sender, ownsSender: false };
  try {
    if (resolved.senderOptions) return { sender: new Sender(resolved.senderOptions), ownsSender: true };
    return { sender: getSender(), ownsSender: false };
  } catch (err) {
    throw asPluginError(err);
  }
}

function asPluginError(err: unknown): Error {
  if (err instanceof ZcSendError) {
    if (err.code === 'ZCSEND_ERR_URING_UNAVAILABLE') return new FST_ZC_URING_UNAVAILABLE(err.message, { cause: err });
    if (err.code === 'ZCSEND_ERR_INVALID_OPTION' || err.code === 'ZCSEND_ERR_INVALID_ARG') {
      return new FST_ZC_INVALID_OPTION(err.message, { cause: err });
    }
  }
  return err as Error;
}

/** Byte length >= n, counting only when the UTF-16 length leaves it open (1 to 3 bytes per unit). */
function utf8AtLeast(text: string, n: number): boolean {
  if (text.length >= n) return true;
  if (text.length * 3 < n) return false;
  return Buffer.byteLength(text, 'utf8') >= n;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return value.constructor?.name ?? 'object';
}
