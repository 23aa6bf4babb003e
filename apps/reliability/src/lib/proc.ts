// What /proc says about a process: open fds, resident memory, liveness.
import * as fs from 'node:fs';

/** Number of open file descriptors, or -1 when the process is gone. */
export function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** What each open fd points at (`socket:[123]`, `anon_inode:[io_uring]`, a path), for leak reports. */
export function fdTargets(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  let names: string[];
  try {
    names = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      out[name] = fs.readlinkSync(`/proc/${pid}/fd/${name}`);
    } catch {
      // closed between readdir and readlink
    }
  }
  return out;
}

/** Counts fd targets by kind (socket, pipe, anon_inode:[io_uring], file), for a compact diff. */
export function fdKinds(pid: number): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const target of Object.values(fdTargets(pid))) {
    const kind = target.startsWith('socket:') ? 'socket' : target.startsWith('pipe:') ? 'pipe' : target.startsWith('anon_inode:') ? target : target.startsWith('/') ? 'file' : target;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

/** Resident set size in bytes (VmRSS), or -1 when the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : -1;
  } catch {
    return -1;
  }
}

/** User + system CPU seconds of the process (all threads), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return -1;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
