// Child processes pinned to one CPU with taskset, their output kept for error messages, and all of
// them stopped when the harness exits (normally, on error or on Ctrl-C).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';

const live = new Set<ChildProcess>();
let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export const HAVE_TASKSET = spawnSync('taskset', ['--version']).status === 0;

/** The command line that runs `command` on `cpu` (unpinned when taskset is missing). */
export function pinned(cpu: number, command: string, args: readonly string[]): [string, string[]] {
  return HAVE_TASKSET ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, [...args]];
}

/** Pins the harness process itself (all its threads) off the server's core. */
export function pinSelf(cpu: number): void {
  if (HAVE_TASKSET) spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Child {
  readonly process: ChildProcess;
  readonly exited: Promise<Exit>;
  private out = '';
  private exitInfo: Exit | null = null;
  private listeners = new Set<() => void>();

  constructor(readonly name: string, command: string, args: readonly string[], options: { cpu: number | null; env?: NodeJS.ProcessEnv; cwd?: string }) {
    installCleanup();
    const [cmd, argv] = options.cpu === null ? [command, [...args]] : pinned(options.cpu, command, args);
    this.process = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env, cwd: options.cwd });
    live.add(this.process);
    const collect = (chunk: Buffer) => {
      // Keep the tail only: servers that log per request must not grow the harness's memory.
      this.out = (this.out + chunk.toString('utf8')).slice(-64 * 1024);
      for (const fn of this.listeners) fn();
    };
    this.process.stdout!.on('data', collect);
    this.process.stderr!.on('data', collect);
    this.exited = new Promise<Exit>((resolve) => {
      this.process.once('error', (err) => {
        this.out += `\n${err.message}`;
        this.exitInfo = { code: null, signal: null };
        live.delete(this.process);
        for (const fn of this.listeners) fn();
        resolve(this.exitInfo);
      });
      this.process.once('close', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this.process);
        for (const fn of this.listeners) fn();
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  get output(): string {
    return this.out;
  }

  get hasExited(): boolean {
    return this.exitInfo !== null;
  }

  /** Last lines of output, for error messages. */
  tail(lines = 6): string {
    return this.out.trim().split('\n').slice(-lines).join(' | ');
  }

  /** Resolves with the first match of `pattern` in the output; rejects if the process exits or time runs out. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(this.out);
        if (match) return finish(() => resolve(match));
        if (this.exitInfo) {
          const how = this.exitInfo.signal ?? `code ${this.exitInfo.code}`;
          return finish(() => reject(new Error(`${this.name} exited (${how}): ${this.tail() || 'no output'}`)));
        }
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms: ${this.tail() || 'no output'}`))), timeoutMs);
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        fn();
      };
      this.listeners.add(check);
      check();
    });
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.exitInfo) this.process.kill(sig);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<Exit> {
    if (this.exitInfo) return this.exitInfo;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}

/** Runs a short-lived command to completion (compilers, apt-get), with a time bound. */
export async function runToEnd(command: string, args: readonly string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ ok: boolean; output: string }> {
  const child = new Child(command, command, args, { cpu: null, env });
  const timer = setTimeout(() => child.signal('SIGKILL'), timeoutMs);
  const exit = await child.exited;
  clearTimeout(timer);
  return { ok: exit.code === 0, output: child.output };
}

export function sleep(ms: number): Promise<void> {
  return delay(ms);
}
