// One server for bench/threshold.mjs, variant from argv:
//   plain      Fastify alone
//   default    Fastify + zcSend with default options (what small replies pay for the plugin)
//   forced     Fastify + zcSend { threshold: 0, adaptive: false }: every body through SEND_ZC
// Prints its port on stdout.
import Fastify from 'fastify';
import zcSend from '@zcsend/fastify';

const [variant] = process.argv.slice(2);
const app = Fastify();
if (variant === 'default') await app.register(zcSend);
if (variant === 'forced') await app.register(zcSend, { threshold: 0, adaptive: false });
const bodies = new Map();
app.get('/:size', (req, reply) => {
  const size = Number(req.params.size);
  let body = bodies.get(size);
  if (!body) bodies.set(size, (body = Buffer.alloc(size, 97)));
  reply.send(body);
});
await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${app.server.address().port}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
