// CommonJS entry. @zcsend/core is ESM-only, so this loads the ESM implementation with a dynamic
// import inside the (async) plugin function: one implementation, usable from require().
import fp = require('fastify-plugin');
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZcSendOptions } from './index.js' with { 'resolution-mode': 'import' };

async function zcSendPlugin(fastify: FastifyInstance, options: ZcSendOptions): Promise<void> {
  const implementation = await import('./plugin.js');
  await implementation.zcSendPlugin(fastify, options);
}

type ZcSendPlugin = FastifyPluginAsync<ZcSendOptions> & { default: ZcSendPlugin; zcSend: ZcSendPlugin };

// The same shapes as the ESM entry: the function itself, `.default` and `.zcSend`.
const zcSend = fp(zcSendPlugin, { fastify: '5.x', name: '@zcsend/fastify' }) as ZcSendPlugin;
zcSend.default = zcSend;
zcSend.zcSend = zcSend;

export = zcSend;
