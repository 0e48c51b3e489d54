// What the benchmarks read from /proc: CPU time and RSS of a process (or of a
// process tree, for PostgreSQL's postmaster and its backends), its peak RSS
// as the kernel kept it, the CPU of the children it reaped, and how many TCP
// connections are established to a local port (bench/fleet: every simulated
// agent has a connection of its own; bench/drain: the agent reconnected).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { descendants } from "../../test/harness/ports.ts";

const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

function read(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null; // the process is gone
  }
}

/** user + system CPU of pid so far, ms (0 when it is gone). */
export function cpuMs(pid: number): number {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === null) return 0;
  // Fields after the command name: index 0 is field 3 (state), utime is field 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/** CPU of the children pid has reaped so far (cutime + cstime), ms: e.g. the agent's exited smbclients. */
export function reapedChildrenCpuMs(pid: number): number {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === null) return 0;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / TICKS_PER_SECOND;
}

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const status = read(`/proc/${pid}/status`);
  const m = status === null ? null : new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return m ? Number(m[1]) : 0;
}

/** Resident set size of pid now, bytes (0 when it is gone). */
export function rssBytes(pid: number): number {
  return statusKb(pid, "VmRSS") * 1024;
}

/** Peak resident set size of pid since it started (VmHWM, kept by the kernel), bytes (0 when it is gone). */
export function peakRssBytes(pid: number): number {
  return statusKb(pid, "VmHWM") * 1024;
}

/** CPU ms of pid and each live descendant, by pid: diff two of these with treeCpuDelta. */
export function treeCpu(pid: number): Map<number, number> {
  return new Map([pid, ...descendants(pid)].map((p) => [p, cpuMs(p)]));
}

/**
 * CPU ms spent between two treeCpu snapshots by the processes alive at the
 * second (a process that started in between counts from zero; one that
 * exited in between is missed, which for a pooled database is rare).
 */
export function treeCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, end] of after) ms += end - (before.get(pid) ?? 0);
  return ms;
}

/** ESTABLISHED TCP connections (IPv4 and IPv6) whose local port is port: the server's side of each. */
export function establishedTo(port: number): number {
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = read(file) ?? "";
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      // st 01 = ESTABLISHED; the local address ends in :PORT in hex.
      if (local !== undefined && cols[3] === "01" && parseInt(local.split(":")[1] ?? "", 16) === port) n++;
    }
  }
  return n;
}

/** Nearest-rank percentile of ascending-sorted samples. */
export function percentileOf(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
