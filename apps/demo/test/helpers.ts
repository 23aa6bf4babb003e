// Runs the built demo (`node dist/main.js`) as a child process, exactly as the README's command
// does, on 127.0.0.1 port 0, and talks to it over real HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { probe } from '@zcsend/core';

export const APP_DIR = fileURLToPath(new URL('..', import.meta.url));
export const MAIN = path.join(APP_DIR, 'dist', 'main.js');
/** Test output, beside the mode's vitest JSON report (tests are not cached by turbo: each run writes it anew). */
export const OUTPUT_DIR = path.join(APP_DIR, '.vitest-report');

/** 'copy' under ZCSEND_DISABLE=1, else 'uring'. */
export const MODE: 'uring' | 'copy' = process.env.ZCSEND_DISABLE === '1' ? 'copy' : 'uring';
export const REQUIRE_URING = process.env.ZCSEND_REQUIRE_URING === '1';
/** The backend the demo must report in this mode: io_uring when required or usable. */
export const EXPECTED_BACKEND: 'io_uring' | 'copy' = MODE === 'copy' ? 'copy' : REQUIRE_URING || probe().available ? 'io_uring' : 'copy';
if (MODE === 'uring' && EXPECTED_BACKEND === 'copy') console.warn(`[zcsend-demo] io_uring unusable here, expecting the copy backend: ${probe().reason}`);

/** Sample files shared by every test file and run (content is deterministic; writes are atomic). */
export const SAMPLE_DIR = path.join(os.tmpdir(), 'zcsend-demo-test-samples');

export interface RunningDemo {
  url: string;
  child: ChildProcess;
  /** Everything printed on stdout and stderr so far. */
  output(): string;
  /** Sends `signal` and resolves with the exit code (null: killed by a signal), failing after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  json<T = any>(urlPath: string, init?: RequestInit): Promise<{ status: number; body: T }>;
}

export function demoEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    ZCSEND_DEMO_DATA: SAMPLE_DIR,
    ZCSEND_ADAPTIVE: '0',
    LOG_LEVEL: 'warn',
    ...extra,
  };
  for (const [key, value] of Object.entries(extra)) if (value === undefined) delete env[key];
  return env;
}

/** Starts the demo and waits for its banner (URL, backend, ... 'Ctrl-C to stop'); rejects with its output if it exits or takes over 30 s. */
export function startDemo(extraEnv: Record<string, string | undefined> = {}): Promise<RunningDemo> {
  if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (pnpm exec turbo run build)`);
  const child = spawn(process.execPath, [MAIN], { env: demoEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`demo did not print its URL within 30 s:\n${output}`));
    }, 30_000);
    const onData = () => {
      const match = /zcsend demo: (http:\/\/\S+\/)/.exec(output);
      if (!match || !output.includes('Ctrl-C to stop')) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      const url = match[1]!;
      resolve({
        url,
        child,
        output: () => output,
        async stop(signal = 'SIGINT', timeoutMs = 15_000) {
          if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
          child.kill(signal);
          const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          const code = await exited;
          clearTimeout(killer);
          if (signal !== 'SIGKILL' && child.signalCode === 'SIGKILL') throw new Error(`demo did not exit within ${timeoutMs} ms of ${signal}:\n${output}`);
          return code;
        },
        async json(urlPath, init) {
          const res = await fetch(new URL(urlPath, url), init);
          return { status: res.status, body: (await res.json()) as never };
        },
      });
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`demo exited with code ${code} before printing its URL:\n${output}`));
    });
  });
}

/** Runs the demo to completion (for start-up failures) and returns its exit code and output. */
export function runDemoToExit(extraEnv: Record<string, string | undefined>, timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [MAIN], { env: demoEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`demo still running after ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export async function fetchSha256(url: string, init?: RequestInit): Promise<{ status: number; bytes: number; sha256: string; headers: Headers }> {
  const res = await fetch(url, init);
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, bytes: body.length, sha256: sha256(body), headers: res.headers };
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function waitFor<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await read();
  while (!done(last)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
    last = await read();
  }
  return last;
}
