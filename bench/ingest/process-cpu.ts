// CPU seconds of processes from /proc, for bench/ingest's breakdown of where
// the time goes: the aggregator, PostgreSQL (postmaster and every backend)
// and the benchmark's own simulated agents.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Clock ticks per second as /proc reports them (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

interface Stat {
  ppid: number;
  /** utime + stime */
  own: number;
  /** cutime + cstime: waited-for children that have exited. */
  children: number;
}

function stat(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null; // gone meanwhile
  }
  // Fields after "(comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based overall.
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return {
    ppid: Number(f[1]),
    own: (Number(f[11]) + Number(f[12])) / USER_HZ,
    children: (Number(f[13]) + Number(f[14])) / USER_HZ,
  };
}

/** CPU seconds (user + system) of one process so far. */
export function cpuSeconds(pid: number): number {
  return stat(pid)?.own ?? NaN;
}

/**
 * CPU seconds of a process and all its children, live and exited: the
 * postmaster, its backends, WAL writer, checkpointer. Backends that exit
 * between two readings move their time into the parent's cutime, so the
 * difference of two readings stays right.
 */
export function treeCpuSeconds(rootPid: number): number {
  const root = stat(rootPid);
  if (root === null) return NaN;
  let total = root.own + root.children;
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === rootPid) continue;
    const s = stat(pid);
    if (s !== null && s.ppid === rootPid) total += s.own;
  }
  return total;
}

/** The postmaster's pid, from the first line of postmaster.pid in its data directory. */
export function postmasterPid(dataDir: string): number {
  return Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
}
