// CPU time from /proc: of one process, and of a PostgreSQL instance (the
// postmaster, with what it reaped from exited backends, plus its live
// children). Used to show where a drain's time goes besides the agent.
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
const TICKS_PER_SECOND = 100;

interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks. */
  ticks: number;
}

function readStat(pid: number): Stat | null {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces; fields after it start at ") ".
    const fields = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
    const n = (i: number): number => Number(fields[i - 3]);
    return { pid, ppid: n(4), ticks: n(14) + n(15) + n(16) + n(17) };
  } catch {
    return null;
  }
}

/** CPU milliseconds used so far by one process (and the children it reaped). */
export function processCpuMs(pid: number): number {
  return ((readStat(pid)?.ticks ?? 0) * 1000) / TICKS_PER_SECOND;
}

/** CPU milliseconds used so far by the postmaster whose data directory is under `dir`, and its children. */
export function postgresCpuMs(dir: string): number {
  const pids = readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map(Number);
  let postmaster: number | null = null;
  for (const pid of pids) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmd.startsWith("/usr/lib/postgresql/") && cmd.includes(dir)) postmaster = pid;
    } catch {
      // gone meanwhile
    }
  }
  if (postmaster === null) return 0;
  let ticks = 0;
  for (const pid of pids) {
    const st = readStat(pid);
    if (st !== null && (st.pid === postmaster || st.ppid === postmaster)) ticks += st.ticks;
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}
