// zcserve [root] [flags]: the file server as a command. bin/zcserve.js calls main().
import cluster from 'node:cluster';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { ZcSendError } from '@zcsend/core';
import { helpText, parseCli, UsageError, type CliConfig } from './cli/args.js';
import { createFileServer, STATS_PATH, type FileServer } from './server/file-server.js';
import { formatSize } from './size.js';

const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** What a worker tells the primary once it listens. */
interface ListeningMessage {
  type: 'zcserve:listening';
  url: string;
  backend: string;
}

function fail(message: string, code: number): never {
  process.stderr.write(`zcserve: ${message}\n`);
  process.exit(code);
}

/** Runs the CLI; exits the process with 2 on a bad command line, 0 after a graceful shutdown. */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  let parsed;
  try {
    parsed = parseCli(argv);
  } catch (err) {
    if (err instanceof UsageError) fail(`${err.message} (see --help)`, 2);
    throw err;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(helpText(VERSION));
    return;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const { config } = parsed;
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config);
  return runServer(config);
}

function describeBackend(server: FileServer, config: CliConfig): string {
  const { sender } = server;
  const engine = `engine ${config.zeroCopy ? config.engine : 'copy'}, cache ${formatSize(config.cacheBytes)}`;
  if (sender.backend === 'io_uring') return `io_uring zero-copy (ring ${sender.ringDescription ?? '?'}), ${engine}`;
  const reason = config.zeroCopy ? (sender.fallbackReason ?? 'unknown') : '--no-zc';
  return `copy (${reason}), ${engine}`;
}

function banner(url: string, root: string, backend: string, config: CliConfig): string {
  const lines = [
    `zcserve ${VERSION} listening on ${url}`,
    `  root     ${root}`,
    `  backend  ${backend}`,
  ];
  if (config.workers > 1) lines.push(`  workers  ${config.workers} (node:cluster, one ring each)`);
  if (config.stats) lines.push(`  stats    ${url.replace(/\/$/, '')}${STATS_PATH}`);
  return lines.join('\n') + '\n';
}

async function runServer(config: CliConfig): Promise<void> {
  let server: FileServer;
  try {
    server = createFileServer({
      root: config.root,
      index: config.index,
      listing: config.list,
      dotfiles: config.dotfiles,
      symlinks: config.symlinks,
      maxAge: config.maxAge,
      immutable: config.immutable,
      cors: config.cors,
      precompressed: config.precompressed,
      engine: config.engine,
      zeroCopy: config.zeroCopy,
      fastPath: config.fastPath,
      cacheBytes: config.cacheBytes,
      maxInFlightBytes: config.maxInFlightBytes,
      statCacheMs: config.statCacheMs,
      timeoutMs: config.timeoutMs,
      minProgressBytes: config.minProgressBytes,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
      stats: config.stats,
      accessLog: !config.quiet,
    });
  } catch (err) {
    if (err instanceof ZcSendError && err.code === 'ZCSEND_ERR_INVALID_OPTION') fail(err.message, 2);
    if (err instanceof ZcSendError) fail(err.message, 1);
    throw err;
  }

  let listening;
  try {
    listening = await server.listen(config.port, config.host);
  } catch (err) {
    fail(`cannot listen on ${config.host}:${config.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 1);
  }
  const backend = describeBackend(server, config);
  if (cluster.isWorker) {
    const message: ListeningMessage = { type: 'zcserve:listening', url: listening.url, backend };
    process.send?.(message);
  } else {
    process.stdout.write(banner(listening.url, server.handler.options.root, backend, config));
  }

  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    if (!cluster.isWorker) process.stdout.write(`zcserve: ${why}: finishing in-flight responses\n`);
    server
      .close()
      .then(async ({ forced }) => {
        // The process's Sender: wait for the last notification before the ring goes away.
        await server.sender.close();
        if (!cluster.isWorker) process.stdout.write(forced ? 'zcserve: stopped (in-flight responses cut off)\n' : 'zcserve: stopped\n');
        process.exit(forced ? 1 : 0);
      })
      .catch((err: unknown) => fail(`shutdown failed: ${(err as Error).message}`, 1));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  if (cluster.isWorker) {
    process.on('message', (m: unknown) => {
      if ((m as { type?: string })?.type === 'zcserve:shutdown') stop('shutdown');
    });
  }
}

function runPrimary(config: CliConfig): void {
  const root = path.resolve(config.root);
  let listening = 0;
  let stopping = false;
  let worstExit = 0;
  const started = new Set<number>();

  const fork = () => {
    const worker = cluster.fork();
    worker.on('message', (m: ListeningMessage) => {
      if (m?.type !== 'zcserve:listening') return;
      started.add(worker.id);
      if (++listening === config.workers) process.stdout.write(banner(m.url, root, m.backend, config));
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    const status = code ?? (signal ? 1 : 0);
    worstExit = Math.max(worstExit, status);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(worstExit);
      return;
    }
    if (!started.has(worker.id)) {
      // It failed before listening (bad root, port in use): the others would fail the same way.
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.kill();
      process.exit(status || 1);
    }
    process.stderr.write(`zcserve: worker ${worker.process.pid} exited (${signal ?? code}); starting another\n`);
    fork();
  });

  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`zcserve: ${why}: finishing in-flight responses\n`);
    const workers = Object.values(cluster.workers ?? {});
    if (workers.length === 0) process.exit(0);
    for (const w of workers) w?.send({ type: 'zcserve:shutdown' });
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  for (let i = 0; i < config.workers; i++) fork();
}
