/**
 * CPU time, peak memory and broker connections of a running process from Linux /proc. Processes started with
 * `startManaged` run under a guard (bash); {@link findDescendant} finds the real program below it.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import path from "node:path";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every mainstream Linux). */
const CLOCK_TICKS = 100;

/** Direct children of `pid` (from /proc/<pid>/task/<tid>/children); empty when it is gone. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      // the task ended meanwhile
    }
  }
  return out;
}

/** File name of the program a process runs (`/proc/<pid>/exe`), e.g. `java` or `node`. */
export function executableName(pid: number): string | undefined {
  try {
    return path.basename(readlinkSync(`/proc/${pid}/exe`));
  } catch {
    return undefined;
  }
}

/**
 * The first descendant of `root` (breadth first, root excluded) running the program `name`. Matched on
 * the executable, not on `comm`: Node renames its main thread (`MainThread`) once it runs.
 */
export function findDescendant(root: number, name: string): number | undefined {
  const queue = childPids(root);
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    if (executableName(pid) === name) return pid;
    queue.push(...childPids(pid));
  }
  return undefined;
}

/** Parses the user + system CPU seconds out of the text of /proc/<pid>/stat. */
export function parseCpuSeconds(stat: string): number {
  // The command name (field 2) is in parentheses and may contain spaces: split after its last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime))
    throw new Error("unexpected /proc/<pid>/stat format");
  return (utime + stime) / CLOCK_TICKS;
}

/** Parses a `kB` field (e.g. `VmHWM`) of /proc/<pid>/status into MiB; undefined when absent. */
export function parseStatusMiB(status: string, field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(status);
  return match?.[1] ? Number(match[1]) / 1024 : undefined;
}

export interface ProcessUsage {
  cpuSeconds: number;
  /** Peak resident set size (VmHWM). */
  peakRssMiB: number;
}

/** CPU seconds so far and peak RSS of a live process; undefined when it is gone. */
export function processUsage(pid: number): ProcessUsage | undefined {
  try {
    const cpuSeconds = parseCpuSeconds(readFileSync(`/proc/${pid}/stat`, "utf8"));
    const peakRssMiB = parseStatusMiB(readFileSync(`/proc/${pid}/status`, "utf8"), "VmHWM") ?? 0;
    return { cpuSeconds, peakRssMiB };
  } catch {
    return undefined;
  }
}

/**
 * Established TCP connections of process `pid` to any of `ports` (the brokers): its socket inodes
 * (/proc/<pid>/fd) matched against the kernel's tables (/proc/<pid>/net/tcp and tcp6). Threads share
 * the descriptors, so worker threads count with their process.
 */
export function tcpConnections(pid: number, ports: ReadonlySet<number>): number {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match?.[1]) inodes.add(match[1]);
      } catch {
        // closed meanwhile
      }
    }
    let count = 0;
    for (const table of ["tcp", "tcp6"]) {
      let text = "";
      try {
        text = readFileSync(`/proc/${pid}/net/${table}`, "utf8");
      } catch {
        continue;
      }
      for (const line of text.split("\n").slice(1)) {
        const fields = line.trim().split(/\s+/);
        // local_address rem_address st ... inode (field 9)
        const remotePort = Number.parseInt(fields[2]?.split(":")[1] ?? "", 16);
        if (fields[3] === "01" && ports.has(remotePort) && inodes.has(fields[9] ?? "")) count++;
      }
    }
    return count;
  } catch {
    return 0;
  }
}
