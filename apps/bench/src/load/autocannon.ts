// autocannon in its own process on the load core: the fallback where wrk cannot be installed.
// It is slower than wrk (JavaScript parsing responses on one core), so small-body req/s reflect
// the load generator more than the server: the report names which generator ran.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Child } from '../spawn.js';
import type { LoadGenerator, LoadResult } from './types.js';

interface RunnerReport {
  requests: number;
  bytes: number;
  seconds: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

export function autocannonVersion(): string | null {
  try {
    return (createRequire(import.meta.url)('autocannon/package.json') as { version: string }).version;
  } catch {
    return null;
  }
}

export class Autocannon implements LoadGenerator {
  readonly description: string;
  private readonly runner = fileURLToPath(new URL('./autocannon-runner.js', import.meta.url));

  constructor(private readonly cpu: number | null) {
    this.description = `autocannon ${autocannonVersion() ?? '?'} (wrk not available)`;
  }

  async run(url: string, connections: number, seconds: number): Promise<LoadResult> {
    const child = new Child('autocannon', process.execPath, [this.runner, url, String(connections), String(seconds)], { cpu: this.cpu });
    const killTimer = setTimeout(() => child.signal('SIGKILL'), seconds * 1000 + 30_000);
    const exit = await child.exited;
    clearTimeout(killTimer);
    const line = /^ZCBENCH (\{.*\})$/m.exec(child.output);
    if (!line) throw new Error(`autocannon gave no report (${exit.signal ?? exit.code}): ${child.tail()}`);
    const r = JSON.parse(line[1]!) as RunnerReport;
    const kinds = [r.errors ? `errors ${r.errors}` : '', r.timeouts ? `timeouts ${r.timeouts}` : '', r.non2xx ? `non-2xx ${r.non2xx}` : ''].filter(Boolean);
    return { seconds: r.seconds, requests: r.requests, bytes: r.bytes, errors: r.errors + r.non2xx, errorText: kinds.join(', ') };
  }
}
