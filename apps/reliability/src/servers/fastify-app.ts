// The Fastify app the soak drives: `node fastify-app.js <root> [--port N] [--timeout MS]`.
// /bodies/<name> replies with a Buffer held in memory (the plugin's byte-body path),
// /static/<path> serves files through @fastify/static (the plugin's file path), and
// /_zcsend/stats returns the plugin's and the Sender's counters.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import fastifyStatic from '@fastify/static';
import zcSend from '@zcsend/fastify';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    timeout: { type: 'string', default: '60000' },
  },
});
const root = path.resolve(positionals[0] ?? '.');
const timeoutMs = Number(values.timeout);

// Bodies held in memory, read once: replies must be byte-identical to the files on disk.
const bodies = new Map<string, Buffer>();
const bodiesDir = path.join(root, 'bodies');
if (fs.existsSync(bodiesDir)) {
  for (const name of fs.readdirSync(bodiesDir)) bodies.set(name, fs.readFileSync(path.join(bodiesDir, name)));
}

const app = Fastify({ logger: false, connectionTimeout: timeoutMs, keepAliveTimeout: 5000 });
await app.register(zcSend);
await app.register(fastifyStatic, { root, prefix: '/static/' });

app.get<{ Params: { name: string } }>('/bodies/:name', async (req, reply) => {
  const body = bodies.get(req.params.name);
  if (!body) return reply.code(404).send('Not Found');
  return reply.type('application/octet-stream').send(body);
});

app.get('/_zcsend/stats', async () => {
  const stats = app.zcSend.stats();
  return { pid: process.pid, backend: stats.backend, fallbackReason: stats.fallbackReason, sender: stats.sender, plugin: stats };
});

const address = await app.listen({ port: Number(values.port), host: values.host });
const backend = app.zcSend.backend === 'io_uring' ? 'io_uring' : `copy (${app.zcSend.fallbackReason ?? 'unknown'})`;
process.stdout.write(`fastify-app listening on ${address}/\n  root     ${root}\n  backend  ${backend}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  app.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`fastify-app: close failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
