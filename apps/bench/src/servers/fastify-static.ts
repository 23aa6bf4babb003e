// Fastify + @fastify/static with default options, for the `files` suite.
//   node fastify-static.js <root> [port]
import * as path from 'node:path';
import Fastify from 'fastify';
import fastifyStatic from '@fastify/static';
import { announce, exitOnSignal } from './announce.js';

const root = path.resolve(process.argv[2] ?? '.');
const port = Number(process.argv[3] ?? 0);

const app = Fastify({ logger: false });
await app.register(fastifyStatic, { root });
await app.listen({ port, host: '127.0.0.1' });
exitOnSignal(() => app.close());
announce(app.server.address(), `fastify ${app.version}`);
