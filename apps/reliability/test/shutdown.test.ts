// Graceful shutdown must end even when a client stopped reading a response the kernel already
// accepted: the server may wait its grace period, then it has to let go (reset the connection,
// which frees what the kernel holds) and exit. A zero-copy body owes a notification until the peer
// acknowledges the bytes, so waiting for it alone can wait forever.
import * as net from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyTree, MiB, type FixtureTree } from '../src/lib/fixtures.js';
import { startServer } from '../src/lib/server-process.js';
import { MODE } from './helpers.js';

const GRACE_S = 1;
/** Far more than the grace period and a drain: a server still running then would run forever. */
const BOUND_MS = 12_000;

let tree: FixtureTree;
beforeAll(() => {
  tree = bodyTree([MiB + 5]);
});
afterAll(() => tree?.cleanup());

async function stallOn(port: number, target: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(`GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`);
  socket.pause(); // reads nothing from here on
  return socket;
}

describe(`graceful shutdown with a stalled client (${MODE})`, () => {
  // zcserve with every file body through SEND_ZC on io_uring (its default engine would splice it).
  const scenarios = [
    ['zcserve', MODE === 'uring' ? ['--engine', 'zc-cache', '--shutdown-timeout', String(GRACE_S)] : ['--shutdown-timeout', String(GRACE_S)]],
    ['fastify', []],
  ] as const;

  it.each(scenarios)('%s exits after SIGTERM within its grace period', async (kind, args) => {
    const server = await startServer({ kind, mode: MODE, root: tree.root, timeoutMs: 60_000, args: [...args] });
    const file = tree.files[0]!;
    // The Fastify app: the Buffer route, which goes through the Sender.
    const target = kind === 'fastify' ? `/bodies/${file.rel.split('/').pop()}` : file.urlPath;
    const client = await stallOn(server.port, target);
    try {
      await new Promise((r) => setTimeout(r, 500)); // the response is accepted by the kernel, unread
      const started = Date.now();
      server.child.kill('SIGTERM');
      const exit = await Promise.race([
        once(server.child, 'exit').then(([code, signal]) => `exit ${signal ?? code}`),
        new Promise<string>((resolve) => setTimeout(() => resolve(`still running ${BOUND_MS} ms after SIGTERM`), BOUND_MS)),
      ]);
      expect(exit, server.output().stdout.slice(-500)).toMatch(/^exit /);
      expect(Date.now() - started).toBeLessThan(BOUND_MS);
    } finally {
      client.destroy();
      await server.stop(2000);
    }
  });
});
