// Compiled (not run) by test/types.test.ts: the public types, declaration merging included.
import Fastify, { type FastifyReply } from 'fastify';
import zcSend, { zcSend as named, FST_ZC_INVALID_OPTION, type ZcSendOptions, type ZcSendStats, type BypassReason } from '@zcsend/fastify';

const app = Fastify();
void app.register(zcSend);
void app.register(named, { threshold: 1024, adaptive: false, files: { engine: 'zc-cache', cacheBytes: 1 << 20 } });
void app.register(zcSend, { files: false, backend: 'copy' });

// @ts-expect-error threshold is a number
void app.register(zcSend, { threshold: '1k' });
// @ts-expect-error unknown engine
void app.register(zcSend, { files: { engine: 'mmap' } });
// @ts-expect-error adaptive is a boolean
const badOptions: ZcSendOptions = { adaptive: 1 };
void badOptions;

app.get('/', (_req, reply) => {
  const back: FastifyReply = reply.zcSend(Buffer.alloc(1));
  reply.zcSend(new Uint8Array(4));
  reply.zcSend('text');
  // @ts-expect-error numbers are not payloads
  reply.zcSend(42);
  return back;
});

const backend: 'io_uring' | 'copy' = app.zcSend.backend;
const reason: string | null = app.zcSend.fallbackReason;
const threshold: number = app.zcSend.threshold;
const stats: ZcSendStats = app.zcSend.stats();
const bodies: number = stats.replies.bodies;
const inFlightOps: number = stats.sender.inFlightOps;
const cacheHits: number | undefined = stats.files?.cache.hits;
const bypassed: number | undefined = stats.replies.bypassed['no-socket' satisfies BypassReason];
// @ts-expect-error stats are read-only numbers, not functions
stats.replies.bodies();
// @ts-expect-error backend is read-only
app.zcSend.backend = 'copy';
const err = new FST_ZC_INVALID_OPTION('x');
const code: string = err.code;
void [backend, reason, threshold, bodies, inFlightOps, cacheHits, bypassed, code];
