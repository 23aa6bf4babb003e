#!/usr/bin/env node
// `node apps/demo/dist/main.js`: prepares the sample files, starts the demo on HOST:PORT, prints
// the URL, and shuts down gracefully on Ctrl-C (SIGINT) or SIGTERM.
import { createDemoApp, type DemoApp } from './app.js';
import { configFromEnv, type DemoConfig } from './config.js';
import { DemoError } from './errors.js';
import { defaultSampleDir, ensureSamples, fallbackSampleDir, totalBytes, type SampleSet } from './samples.js';

/** Fastify's close waits for replies in flight and every notification; past this we give up. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(0)} MiB`;
}

async function prepareSamples(config: DemoConfig): Promise<SampleSet> {
  const dirs = config.sampleDir ? [config.sampleDir] : [defaultSampleDir(), fallbackSampleDir()];
  let lastError: unknown;
  for (const dir of dirs) {
    try {
      const started = Date.now();
      const set = await ensureSamples(dir);
      if (set.generated) say(`zcsend demo: wrote ${set.files.length} sample files (${mib(totalBytes(set.files))}) to ${dir} in ${Date.now() - started} ms`);
      return set;
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${(err as { code?: string }).code ? `${(err as { code?: string }).code}: ` : ''}${err.message}`;
  return String(err);
}

function handleSignals(demo: DemoApp): void {
  let shuttingDown = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      say(`zcsend demo: ${signal} again, exiting now`);
      process.exit(130);
    }
    shuttingDown = true;
    say(`zcsend demo: ${signal} received, shutting down (stopping load, draining zero-copy notifications)`);
    const timer = setTimeout(() => {
      say(`zcsend demo: shutdown took more than ${SHUTDOWN_TIMEOUT_MS / 1000} s, exiting anyway`);
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    demo.close().then(
      () => {
        clearTimeout(timer);
        say('zcsend demo: stopped');
        process.exit(0);
      },
      (err: unknown) => {
        clearTimeout(timer);
        process.stderr.write(`zcsend demo: error while shutting down: ${describe(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

async function main(): Promise<void> {
  let config: DemoConfig;
  try {
    config = configFromEnv();
  } catch (err) {
    process.stderr.write(`zcsend demo: ${err instanceof DemoError ? err.message : describe(err)}\n`);
    process.exit(2);
  }
  const samples = await prepareSamples(config);
  const demo = await createDemoApp({ samples, adaptive: config.adaptive, logLevel: config.logLevel });
  handleSignals(demo);
  const { url } = await demo.listen(config.port, config.host);
  const { info } = demo;
  say(`zcsend demo: ${url}`);
  say(
    info.backend === 'io_uring'
      ? `  backend  io_uring (ring: ${info.ring}; adaptive ${info.adaptive ? 'on' : 'off'}; threshold ${info.threshold} bytes)`
      : `  backend  copy (${info.fallbackReason})`,
  );
  say(`  kernel   ${info.probe.kernel}`);
  say(`  samples  ${samples.dir} (${samples.files.length} files, ${mib(totalBytes(samples.files))})`);
  say('  Ctrl-C to stop');
}

main().catch((err: unknown) => {
  process.stderr.write(`zcsend demo: could not start: ${describe(err)}\n`);
  process.exit(1);
});
