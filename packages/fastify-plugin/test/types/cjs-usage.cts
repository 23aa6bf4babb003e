// Compiled (not run) by test/types.test.ts: a CommonJS consumer.
import zcSend = require('@zcsend/fastify');
import Fastify = require('fastify');

const app = Fastify.default();
void app.register(zcSend, { threshold: 4096 });
void app.register(zcSend.default);
void app.register(zcSend.zcSend, { adaptive: false });
// @ts-expect-error threshold is a number
void app.register(zcSend, { threshold: true });
app.get('/', (_req, reply) => reply.zcSend(Buffer.alloc(1)));
const backend: 'io_uring' | 'copy' = app.zcSend.backend;
void backend;
