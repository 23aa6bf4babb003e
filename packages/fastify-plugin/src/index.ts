import fp from 'fastify-plugin';
import type { FastifyPluginAsync } from 'fastify';
import { zcSendPlugin, type ZcSendApi, type ZcSendPayload } from './plugin.js';
import type { ZcSendOptions } from './options.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Backend, fallback reason and counters of @zcsend/fastify. */
    zcSend: ZcSendApi;
  }
  interface FastifyReply {
    /**
     * Send `data` like `reply.send(data)`, through the zero-copy Sender whatever its size (the
     * threshold does not apply). Where the reply cannot use the socket (inject(), TLS, HTTP/2,
     * HEAD...) it is an ordinary send.
     */
    zcSend(data: ZcSendPayload): FastifyReply;
  }
}

/** `fastify.register(zcSend, options)`: large reply bodies go out through io_uring zero-copy sends. */
export const zcSend: FastifyPluginAsync<ZcSendOptions> = fp(zcSendPlugin, { fastify: '5.x', name: '@zcsend/fastify' });
export default zcSend;

export { zcSendPlugin };
export { DEFAULT_REPLY_THRESHOLD, type ZcSendOptions, type ZcSendFileOptions } from './options.js';
export type { ZcSendApi, ZcSendPayload, ZcSendStats } from './plugin.js';
export type { ReplyStats } from './reply-stats.js';
export type { BypassReason } from './eligibility.js';
export { errors, FST_ZC_INVALID_OPTION, FST_ZC_INVALID_PAYLOAD, FST_ZC_URING_UNAVAILABLE } from './errors.js';
