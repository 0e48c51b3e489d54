// npm run bench:agent — the agent against a local Samba (issue 2, acceptance 6).
// Each figure is its own module; this file starts Samba, pins the cores and
// calls them in turn, then prints every verdict together:
//   (a) figure-cpu.ts: agent CPU per probe run next to smbclient's own CPU;
//   (b) figure-latency.ts: reported latency next to the same operation timed
//       on the wire (tcpdump on lo): median, p95 and max of the error;
//   (c) figure-schedule.ts: the most targets one agent keeps on schedule at a
//       60 s interval on one core, extrapolated from (a), then checked;
//   (d) figure-delimiter.ts: the end-of-command delimiter alone, next to the
//       cheapest operation.
// A new figure is a module that takes what it needs (Samba, the sequential
// runs) and adds its verdicts; one more call below.
//
// Parameters (environment; any value off its default makes a validation run):
//   BENCH_RUNS                 sequential runs for (a) and (b)          (60)
//   BENCH_WINDOW_SECONDS       window of each schedule level in (c)    (40)
//   BENCH_LOAD_LEVELS          levels in (c), % of the extrapolation   (50,80,100)
//   BENCH_MAX_CONCURRENT_RUNS  the scheduler's cap in (c)              (16)
// Needs root (tcpdump, taskset). About 3 minutes with the defaults.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { startSamba } from "../../test/harness/samba.ts";
import { startRun } from "../shared/run-info.ts";
import { Verdicts } from "../shared/verdict.ts";
import { cpuFigure } from "./figure-cpu.ts";
import { delimiterFigure } from "./figure-delimiter.ts";
import { latencyFigure } from "./figure-latency.ts";
import { scheduleFigure } from "./figure-schedule.ts";
import { BENCH_MAX_CONCURRENT_RUNS } from "./schedule.ts";
import { sequentialRuns } from "./sequential-runs.ts";

const DEFAULTS = { runs: 60, windowSeconds: 40, loadLevels: "50,80,100", maxConcurrentRuns: 16 };

function positive(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}: a positive number, not ${process.env[name]}`);
  return v;
}

async function main(): Promise<number> {
  const runs = positive("BENCH_RUNS", DEFAULTS.runs);
  const windowSeconds = positive("BENCH_WINDOW_SECONDS", DEFAULTS.windowSeconds);
  const levelsText = process.env["BENCH_LOAD_LEVELS"] ?? DEFAULTS.loadLevels;
  const loadLevels = levelsText
    .split(",")
    .map((x) => Number(x) / 100)
    .sort((a, b) => a - b);
  if (loadLevels.some((x) => !Number.isFinite(x) || x <= 0)) {
    throw new Error(`BENCH_LOAD_LEVELS: percentages separated by commas, not ${levelsText}`);
  }
  const run = startRun(
    "bench:agent",
    ["smbclient", "smbd", "tcpdump"],
    [
      { name: "BENCH_RUNS", value: runs, default: DEFAULTS.runs },
      { name: "BENCH_WINDOW_SECONDS", value: windowSeconds, default: DEFAULTS.windowSeconds },
      { name: "BENCH_LOAD_LEVELS", value: levelsText, default: DEFAULTS.loadLevels },
      {
        name: "BENCH_MAX_CONCURRENT_RUNS",
        value: BENCH_MAX_CONCURRENT_RUNS,
        default: DEFAULTS.maxConcurrentRuns,
      },
    ],
  );
  const verdicts = new Verdicts();
  const samba = await startSamba();
  const dir = mkdtempSync(join(tmpdir(), "smbfleet-bench-"));
  try {
    // One core for the agent and its smbclients, the other for smbd: the server is remote at a real site.
    const twoCores = cpus().length >= 2;
    if (twoCores) {
      spawnSync("taskset", ["-a", "-p", "-c", "1", String(samba.pgid)], { stdio: "ignore" });
      spawnSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" });
      console.log("pinning: this process and its smbclients on core 0, smbd on core 1");
    }
    const sequential = await sequentialRuns(samba, dir, runs);
    const { perRunMs } = cpuFigure(sequential, verdicts);
    latencyFigure(sequential, verdicts);
    await delimiterFigure(samba, sequential, verdicts);
    await scheduleFigure(samba, perRunMs, { windowSeconds, loadLevels, twoCores }, verdicts);
    verdicts.print();
    return 0;
  } finally {
    await samba.stop();
    rmSync(dir, { recursive: true, force: true });
    run.end();
  }
}

process.exitCode = await main();
