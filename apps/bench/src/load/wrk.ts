// wrk, one thread on the load core. wrk takes whole seconds only, so it runs with a long -d and
// the harness stops it with SIGINT, on which wrk prints its summary and calls the script's done().
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Child } from '../spawn.js';
import type { LoadGenerator, LoadResult } from './types.js';

const REPORT_SCRIPT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('ZCBENCH {"requests":%d,"bytes":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
`;

interface WrkReport {
  requests: number;
  bytes: number;
  durationUs: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
}

export function wrkVersion(binary: string): string {
  const out = spawnSync(binary, ['-v'], { encoding: 'utf8' });
  const match = /wrk (\S+)/.exec(`${out.stdout}${out.stderr}`);
  return match?.[1] ?? 'unknown';
}

export class Wrk implements LoadGenerator {
  readonly description: string;
  private readonly script: string;

  constructor(private readonly binary: string, private readonly cpu: number | null, tmpDir: string) {
    this.script = path.join(tmpDir, 'wrk-report.lua');
    writeFileSync(this.script, REPORT_SCRIPT);
    this.description = `wrk ${wrkVersion(binary)} (1 thread, keep-alive)`;
  }

  async run(url: string, connections: number, seconds: number): Promise<LoadResult> {
    const args = ['-t1', `-c${connections}`, '-d3600s', '--timeout', '30s', '-s', this.script, url];
    const child = new Child('wrk', this.binary, args, { cpu: this.cpu });
    const stopTimer = setTimeout(() => child.signal('SIGINT'), seconds * 1000);
    const killTimer = setTimeout(() => child.signal('SIGKILL'), seconds * 1000 + 15_000);
    const exit = await child.exited;
    clearTimeout(stopTimer);
    clearTimeout(killTimer);
    const line = /^ZCBENCH (\{.*\})$/m.exec(child.output);
    if (!line) throw new Error(`wrk gave no report (${exit.signal ?? exit.code}): ${child.tail()}`);
    const r = JSON.parse(line[1]!) as WrkReport;
    const kinds = (['connect', 'read', 'write', 'timeout', 'status'] as const).filter((k) => r[k] > 0).map((k) => `${k} ${r[k]}`);
    return {
      seconds: r.durationUs / 1e6,
      requests: r.requests,
      bytes: r.bytes,
      errors: r.connect + r.read + r.write + r.timeout + r.status,
      errorText: kinds.join(', '),
    };
  }
}
