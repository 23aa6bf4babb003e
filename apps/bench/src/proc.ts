// What the kernel says about the server processes: CPU time from /proc/<pid>/stat (utime + stime
// of all threads, plus reaped children), peak RSS from /proc/<pid>/status (VmHWM). Measured on the
// server's side, never inferred from the client.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

function clockTicksPerSecond(): number {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(value) && value > 0) return value;
  } catch {
    // getconf missing: Linux's USER_HZ is 100 on every mainstream architecture
  }
  return 100;
}

export const CLK_TCK = clockTicksPerSecond();

interface StatFields {
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

/** Fields after the command name, which may itself contain spaces and parentheses. */
function readStat(pid: number): StatFields | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): field n is rest[n - 3].
  const field = (n: number) => Number(rest[n - 3]);
  return { ppid: field(4), ticks: field(14) + field(15) + field(16) + field(17) };
}

/** The process and all its descendants (nginx's worker, cluster workers). */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(pid);
    children.set(stat.ppid, list);
  }
  const tree: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (!readStat(pid)) continue;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** CPU ticks per process of a tree, to subtract before from after. */
export type CpuSnapshot = Map<number, number>;

export function cpuSnapshot(rootPid: number): CpuSnapshot {
  const snap: CpuSnapshot = new Map();
  for (const pid of processTree(rootPid)) {
    const stat = readStat(pid);
    if (stat) snap.set(pid, stat.ticks);
  }
  return snap;
}

/** CPU seconds spent between two snapshots; a process that appeared in between counts whole. */
export function cpuSecondsBetween(before: CpuSnapshot, after: CpuSnapshot): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return Math.max(0, ticks) / CLK_TCK;
}

/** VmHWM in bytes, or null when the process is gone or has no memory (kernel thread). */
export function peakRssBytes(pid: number): number | null {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Summed VmHWM of a process tree. */
export function treePeakRssBytes(rootPid: number): number | null {
  let total = 0;
  let any = false;
  for (const pid of processTree(rootPid)) {
    const rss = peakRssBytes(pid);
    if (rss !== null) {
      total += rss;
      any = true;
    }
  }
  return any ? total : null;
}

/**
 * Resets VmHWM to the current RSS ("5" > clear_refs, Linux >= 4.0) so the next reading is the
 * peak of this window, not of the process's life. Returns false where that is not allowed.
 */
export function resetPeakRss(rootPid: number): boolean {
  let ok = true;
  for (const pid of processTree(rootPid)) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}
