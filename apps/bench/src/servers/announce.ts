// How the harness's own server scripts report readiness: one stdout line it waits for.
import type { AddressInfo } from 'node:net';

export function announce(address: AddressInfo | string | null, details: string): void {
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`listening ${port} ${details}\n`);
}

/**
 * The harness stops servers with SIGTERM once the load is gone. `close` (Fastify's, which lets
 * zcSend wait for its last notifications) gets two seconds before the process exits anyway.
 */
export function exitOnSignal(close?: () => Promise<unknown>): void {
  const stop = () => {
    const timer = setTimeout(() => process.exit(0), 2000);
    timer.unref();
    void (close ? close() : Promise.resolve()).finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
