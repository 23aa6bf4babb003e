// What every suite gets from the CLI: the plan, the machine, the pinning, the tools found.
import * as os from 'node:os';
import { readFileSync } from 'node:fs';
import type { LoadGenerator } from './load/types.js';
import type { MachineInfo, Mode } from './results.js';
import type { Plan } from './plan.js';
import type { CProgram, SystemTools } from './tools.js';
import { HAVE_TASKSET } from './spawn.js';

export interface SuiteContext {
  mode: Mode;
  plan: Plan;
  machine: MachineInfo;
  /** Scratch directory for this run (files served, configs); removed at the end. */
  tmp: string;
  /** CPU the measured server/sender runs on. */
  serverCpu: number | null;
  /** CPU the load generator / sink runs on. */
  loadCpu: number | null;
  load: LoadGenerator | null;
  /** Why no load generator is available, when `load` is null. */
  loadMissing: string | null;
  tools: SystemTools;
  c: CProgram;
  /** Only these competitor ids, when given. */
  only: Set<string> | null;
  log(line: string): void;
}

/** An expected, reportable reason not to measure a competitor: a missing binary, an unbuilt package. */
export class SkipError extends Error {
  override name = 'SkipError';
}

export function machineInfo(serverCpu: number | null, loadCpu: number | null): MachineInfo {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux
  }
  return {
    kernel: os.release(),
    // os.cpus(), not availableParallelism(): the harness pins itself, which narrows the latter.
    cpus: os.cpus().length,
    cpuModel,
    node: process.version,
    serverCpu: serverCpu ?? -1,
    loadCpu: loadCpu ?? -1,
    pinned: HAVE_TASKSET && serverCpu !== null,
  };
}
