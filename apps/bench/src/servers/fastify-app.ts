// One Fastify app for the `fastify` suite, with or without zcSend: Buffer replies at /buf/<bytes>
// and @fastify/static files under /static/. Nothing else differs between the two.
//   node fastify-app.js <root> <port> <buffer sizes, comma separated> [--zc]
// Prints "listening <port> <details>", or "skip <reason>" and exits 3 when @zcsend/fastify
// cannot be loaded or registered.
import * as path from 'node:path';
import Fastify, { type FastifyPluginAsync } from 'fastify';
import fastifyStatic from '@fastify/static';
import { patternBody } from '../body.js';
import { announce, exitOnSignal } from './announce.js';

const [rootArg, portArg, sizesArg, flag] = process.argv.slice(2);
const root = path.resolve(rootArg ?? '.');
const port = Number(portArg ?? 0);
const withZcSend = flag === '--zc';
const buffers = new Map((sizesArg ?? '').split(',').filter(Boolean).map((s) => [Number(s), patternBody(Number(s))]));

interface ZcSendModule {
  zcSend: FastifyPluginAsync;
}
interface ZcSendApi {
  backend: string;
  fallbackReason: string | null;
  threshold: number;
}

const app = Fastify({ logger: false });
let details = `fastify ${app.version}`;
if (withZcSend) {
  // A variable specifier: the harness builds and runs even while the plugin is not built yet.
  const specifier = '@zcsend/fastify';
  try {
    const { zcSend } = (await import(specifier)) as ZcSendModule;
    await app.register(zcSend);
    const api = (app as unknown as { zcSend: ZcSendApi }).zcSend;
    details += `, zcSend backend ${api.backend}${api.fallbackReason ? ` (${api.fallbackReason})` : ''}, threshold ${api.threshold}`;
  } catch (err) {
    process.stdout.write(`skip @zcsend/fastify unavailable: ${(err as Error).message.split('\n')[0]}\n`);
    process.exit(3);
  }
}
await app.register(fastifyStatic, { root, prefix: '/static/' });
app.get<{ Params: { size: string } }>('/buf/:size', async (request, reply) => {
  const body = buffers.get(Number(request.params.size));
  if (!body) return reply.code(404).send();
  return reply.type('application/octet-stream').send(body);
});
await app.listen({ port, host: '127.0.0.1' });
exitOnSignal(() => app.close());
announce(app.server.address(), details);
