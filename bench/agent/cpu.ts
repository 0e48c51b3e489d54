// CPU accounting for one probe run: the agent's own (process.cpuUsage, all
// threads, microseconds) and smbclient's (the kernel adds a reaped child's
// user+system time to the parent's cutime/cstime in /proc/self/stat; Node
// reaps smbclient when it exits, so the difference across a run is exactly
// that run's smbclient, in clock ticks).
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/** CPU ms of this process's reaped children so far. */
export function childrenCpuMs(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  // Fields after the command name (which may hold spaces): field 3 is at index 0.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cutime = Number(fields[13]);
  const cstime = Number(fields[14]);
  return ((cutime + cstime) * 1000) / TICKS_PER_SECOND;
}

/** CPU ms of this process (user + system, all threads). */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export const CHILD_CPU_RESOLUTION_MS = 1000 / TICKS_PER_SECOND;
