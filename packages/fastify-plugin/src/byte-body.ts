import type { ServerResponse } from 'node:http';
import type * as net from 'node:net';
import type { FastifyReply } from 'fastify';
import type { PluginContext } from './context.js';
import { isClientGone } from './context.js';
import {
  declaredLength,
  hasNoBody,
  isEncoded,
  noGainBypass,
  replyConnection,
  untouchedFraming,
  whenResponseHasSocket,
  type BypassReason,
} from './eligibility.js';

type End = (...args: unknown[]) => ServerResponse;
const kZcEnd = Symbol('zcsend.end');

/**
 * Buffer and string bodies: Fastify ends the response with `res.end(payload)` after every onSend
 * hook ran and the headers (Content-Length included) are stored. Wrapping `end` on this one
 * response lets the plugin see the final payload whatever hooks come after its own, while every
 * hook still sees the payload it would see without the plugin.
 */
export function armByteBody(ctx: PluginContext, reply: FastifyReply, forced: boolean): void {
  const res = reply.raw as unknown as { end: End & { [kZcEnd]?: true } };
  if (res.end[kZcEnd]) return;
  const original = res.end;
  const zcEnd = function (this: unknown, ...args: unknown[]): ServerResponse {
    res.end = original;
    const chunk = args[0];
    if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) return Reflect.apply(original, res, args);
    // An unknown encoding is Node's error to throw.
    if (typeof args[1] === 'string' && !Buffer.isEncoding(args[1])) return Reflect.apply(original, res, args);
    const encoding = typeof args[1] === 'string' ? (args[1] as BufferEncoding) : 'utf8';
    const decision = decide(ctx, reply, chunk, encoding, forced);
    if (typeof decision === 'string') {
      ctx.tracker.bypass(decision);
      return Reflect.apply(original, res, args);
    }
    send(ctx, reply, decision, original, args);
    return reply.raw;
  } as End & { [kZcEnd]?: true };
  zcEnd[kZcEnd] = true;
  res.end = zcEnd;
}

interface Eligible {
  body: Uint8Array;
  connection: net.Socket;
}

function decide(
  ctx: PluginContext,
  reply: FastifyReply,
  chunk: string | Uint8Array,
  encoding: BufferEncoding,
  forced: boolean,
): Eligible | BypassReason {
  const res = reply.raw;
  const length = typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.byteLength;
  if (length === 0 || length < (forced ? 1 : ctx.threshold)) return 'below-threshold';
  if (hasNoBody(reply.request.raw.method, res.statusCode)) return 'no-body';
  const connection = replyConnection(reply);
  if (typeof connection === 'string') return connection;
  if (isEncoded(reply)) return 'encoded';
  if (!untouchedFraming(res) || declaredLength(reply) !== length || reply.hasHeader('transfer-encoding')) return 'framing';
  if (ctx.closing || !ctx.sender.isOpen) return 'closing';
  if (!forced) {
    const noGain = noGainBypass(ctx.sender, connection);
    if (noGain) return noGain;
  }
  return { body: typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk, connection };
}

function send(ctx: PluginContext, reply: FastifyReply, eligible: Eligible, original: End, args: unknown[]): void {
  const res = reply.raw;
  ctx.tracker.start();
  // A pipelined response waits for the ones before it (Node would buffer it meanwhile).
  whenResponseHasSocket(res, eligible.connection, (socket) => {
    if (!socket || ctx.closing) {
      ctx.tracker.abandoned(socket ? 'closing' : 'no-socket');
      Reflect.apply(original, res, args);
      return;
    }
    sendOn(ctx, reply, socket, eligible.body, original, args);
  });
}

function sendOn(ctx: PluginContext, reply: FastifyReply, socket: net.Socket, body: Uint8Array, original: End, args: unknown[]): void {
  const res = reply.raw;
  const callback = args.findLast((a) => typeof a === 'function');
  const finish = (): void => {
    if (callback) Reflect.apply(original, res, [callback]);
    else Reflect.apply(original, res, []);
  };
  // Headers go through libuv first; the Sender waits until libuv holds nothing for the socket
  // before its first byte, and nothing else writes to the socket until `sent`.
  res.flushHeaders();
  let handle: ReturnType<PluginContext['sender']['send']>;
  try {
    ctx.held.add(socket);
    handle = ctx.sender.send(socket, body, { threshold: 0 });
  } catch (err) {
    // Refused before touching the socket: the body goes out through Node as it would have.
    ctx.tracker.abandoned('closing');
    reply.log.warn({ err }, 'zcSend: send refused, body written by Node instead');
    Reflect.apply(original, res, args);
    return;
  }
  handle.sent.then(finish, (err: { code?: string }) => {
    // Failed mid-body: close the connection now. A Sender closing under us is decided below,
    // once it is known whether any byte of this body went out.
    if (err.code !== 'ZCSEND_ERR_SENDER_CLOSED') res.destroy();
  });
  void handle.released.then((report) => {
    if (!report.error) {
      ctx.tracker.sent('bodies', report.bytes, false);
      return;
    }
    if (report.error.code === 'ZCSEND_ERR_SENDER_CLOSED' && report.bytes === 0 && !socket.destroyed) {
      // The Sender closed before this body's first byte: nothing of it is on the wire yet.
      ctx.tracker.abandoned('closing');
      Reflect.apply(original, res, args);
      return;
    }
    ctx.tracker.sent('bodies', report.bytes, true);
    if (!isClientGone(report.error)) reply.log.warn({ err: report.error }, 'zcSend: reply body send failed');
    // A partial body breaks the framing: the connection must go (Fastify sees 'close', as on any abort).
    if (!res.destroyed) res.destroy();
  });
}
