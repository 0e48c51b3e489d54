// What every benchmark prints around its figures, so that a figure copied
// into docs/benchmarks.md carries its conditions with it: date, machine
// (nproc, CPU model, RAM), the versions it ran against, the code (commit),
// the load average at start and end, and whether the run used the default
// parameters. A run with other parameters (shorter, smaller) is labelled as
// such on its first and last lines: it validates the script, it is not a result.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";

/** Version probes are local and instant; a hung one must not hang the benchmark. */
const PROBE_TIMEOUT_MS = 10_000;
/** Where the harness runs PostgreSQL from (test/harness/postgres.ts). */
const POSTGRES_BIN = "/usr/lib/postgresql/15/bin/postgres";

export type Tool = "postgres" | "smbclient" | "smbd" | "tcpdump";

/** A parameter the benchmark was run with, and its default. */
export interface Parameter {
  name: string;
  value: string | number;
  default: string | number;
}

export interface RunInfo {
  /** Non-default parameters, as printed; empty for a full run. */
  readonly nonDefault: readonly string[];
  /** Prints the load average at the end and repeats the run's kind. */
  end(): void;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: PROBE_TIMEOUT_MS });
  if (r.error !== undefined) return `unavailable (${r.error.message})`;
  const text = `${r.stdout}${r.stderr}`.trim().split("\n")[0] ?? "";
  return text === "" ? `unavailable (exit ${r.status})` : text;
}

const TOOL_VERSION: Record<Tool, () => string> = {
  postgres: () => firstLine(POSTGRES_BIN, ["--version"]),
  smbclient: () => `smbclient ${firstLine("smbclient", ["--version"])}`,
  smbd: () => `smbd ${firstLine("smbd", ["--version"])}`,
  tcpdump: () => firstLine("tcpdump", ["--version"]),
};

function memTotalGiB(): string {
  const m = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"));
  return m === null ? "?" : `${(Number(m[1]) / 1024 ** 2).toFixed(1)} GiB (MemTotal ${m[1]} kB)`;
}

function commit(): string {
  const head = firstLine("git", ["-C", import.meta.dirname, "rev-parse", "--short=12", "HEAD"]);
  const dirty = spawnSync(
    "git",
    ["-C", import.meta.dirname, "status", "--porcelain", "--untracked-files=no"],
    {
      encoding: "utf8",
      timeout: PROBE_TIMEOUT_MS,
    },
  );
  return dirty.stdout.trim() === "" ? head : `${head} + uncommitted changes`;
}

export const loadAverage = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

/**
 * Prints the run's header: bench name, date, machine, versions, commit, load
 * average, and the parameters. Any parameter off its default makes the run a
 * validation run, said on the first line and again by end().
 */
export function startRun(bench: string, tools: readonly Tool[], parameters: readonly Parameter[]): RunInfo {
  const nonDefault = parameters
    .filter((p) => String(p.value) !== String(p.default))
    .map((p) => `${p.name}=${p.value} (default ${p.default})`);
  const kind =
    nonDefault.length === 0
      ? "FULL RUN (default parameters)"
      : `VALIDATION RUN, NOT A RESULT: non-default ${nonDefault.join(", ")}`;
  console.log(`# smbfleet ${bench} — ${kind}`);
  console.log(`date: ${new Date().toISOString()}`);
  console.log(
    `machine: nproc ${availableParallelism()} (${cpus().length} CPUs online), ${cpus()[0]?.model ?? "unknown CPU"}, ` +
      `RAM ${memTotalGiB()}`,
  );
  console.log(`versions: node ${process.version}; ${tools.map((t) => TOOL_VERSION[t]()).join("; ")}`);
  console.log(`code: commit ${commit()}`);
  console.log(`parameters: ${parameters.map((p) => `${p.name}=${p.value}`).join(", ")}`);
  console.log(`load average at start: ${loadAverage()}`);
  return {
    nonDefault,
    end() {
      console.log(`load average at end: ${loadAverage()}`);
      console.log(`# end of ${bench} — ${kind}`);
    },
  };
}
