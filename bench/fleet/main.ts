// bench/fleet: many simulated agents against one aggregator process with
// PostgreSQL (fsync on). Each agent has its own certificate (issueAgent) and
// its own stream on its own TCP connection (counted from /proc/net/tcp), 10
// targets, a 10 s interval: 1,000 agents make ~1,000 results/s. The agents
// run in separate Node processes (bench/fleet/agents.ts), never in the
// aggregator's. Reported per phase: aggregator CPU (from /proc/<pid>/stat)
// and peak RSS, PostgreSQL CPU, ack latency p50/p99 (result accepted by the
// sender → acked; the sender's window is never full at this rate, so this is
// batch send → ack), and whether anything fell behind: every (agent, seq)
// produced is looked up in PostgreSQL (missing and duplicated counted), and
// the backlog when production stopped and after the drain wait.
//
// Baseline in the same run: the same results/s from few agents (10 × 1,000
// targets) — the ratio shows what 1,000 streams cost over the same work from
// 10. Each phase runs against a fresh aggregator process and a fresh
// database (phase.ts), whose idle cost is measured first.
//
//   npm run bench:fleet [-- --agents 1000 --duration 60 --processes 2 --baseline-agents 10
//                          --baseline-duration 30 --idle 10 --pool-size N]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createFleetPki } from "../../test/harness/fleet.ts";
import { findProcesses } from "../../test/harness/ports.ts";
import { startPostgres } from "../../test/harness/postgres.ts";
import { startRun, type Parameter } from "../shared/run-info.ts";
import { Verdicts } from "../shared/verdict.ts";
import { runPhase, type PhaseResult } from "./phase.ts";

const DEFAULTS = {
  agents: 1000,
  targets: 10,
  interval: 10,
  duration: 60,
  processes: 2,
  "baseline-agents": 10,
  "baseline-duration": 30,
  "connect-per-second": 100,
  idle: 10,
} as const;
type Numeric = keyof typeof DEFAULTS;

const { values } = parseArgs({
  options: {
    ...(Object.fromEntries(
      Object.entries(DEFAULTS).map(([k, v]) => [k, { type: "string", default: String(v) }]),
    ) as Record<Numeric, { type: "string"; default: string }>),
    // The aggregator's [database] pool_size (its default when absent).
    "pool-size": { type: "string" },
  },
});
const num = (name: Numeric | "pool-size"): number => {
  const v = Number(values[name]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name}: a positive number, not ${values[name]}`);
  return v;
};
const AGENTS = num("agents");
const TARGETS = num("targets");
const INTERVAL_MS = num("interval") * 1000;
const BASELINE_AGENTS = num("baseline-agents");
const POOL_SIZE = values["pool-size"] === undefined ? undefined : num("pool-size");

/** After production stops, agents get this long to drain what they hold. */
const DRAIN_MS = 30_000;
/** More than this many seconds of production unacked when production stops means a queue was building. */
const BEHIND_SECONDS = 2;
const PROMETHEUS_SCRAPE_TIMEOUT_MS = 10_000;

const mb = (b: number): number => Math.round(b / 1e6);
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;
const log = (msg: string): void => void process.stderr.write(`[bench:fleet] ${msg}\n`);

const parameters: Parameter[] = [
  ...(Object.keys(DEFAULTS) as Numeric[]).map((k) => ({
    name: `--${k}`,
    value: num(k),
    default: DEFAULTS[k],
  })),
  { name: "--pool-size", value: POOL_SIZE ?? "default", default: "default" },
];
const run = startRun("bench:fleet", ["postgres"], parameters);
const dir = mkdtempSync(join(tmpdir(), "smbfleet-bench-fleet-"));
const pg = await startPostgres({ fsync: true });
try {
  const pki = await createFleetPki(join(dir, "pki"));
  const baselineTargets = Math.round((AGENTS * TARGETS) / BASELINE_AGENTS);
  const issueStart = performance.now();
  const fleetNames = Array.from({ length: AGENTS }, (_, i) => `a${String(i).padStart(4, "0")}`);
  const baselineNames = Array.from({ length: BASELINE_AGENTS }, (_, i) => `b${String(i).padStart(4, "0")}`);
  for (const name of [...baselineNames, ...fleetNames]) await pki.agent(`s${name.slice(-1)}`, name);
  const issueMs = performance.now() - issueStart;
  log(`issued ${AGENTS + BASELINE_AGENTS} agent certificates in ${Math.round(issueMs)} ms`);
  const postmaster = findProcesses((argv) => argv.some((a) => a.startsWith(pg.dir)))[0]?.pid;
  if (postmaster === undefined) throw new Error("cannot find the postmaster's pid");

  const common = {
    pg,
    postmaster,
    pki,
    dir,
    intervalMs: INTERVAL_MS,
    idleMs: num("idle") * 1000,
    drainMs: DRAIN_MS,
    connectPerSecond: num("connect-per-second"),
    poolSize: POOL_SIZE,
  };
  const baseline = await runPhase({
    ...common,
    name: "baseline",
    names: baselineNames,
    targets: baselineTargets,
    processes: 1,
    durationMs: num("baseline-duration") * 1000,
    scrape: false,
  });
  const fleet = await runPhase({
    ...common,
    name: "fleet",
    names: fleetNames,
    targets: TARGETS,
    processes: num("processes"),
    durationMs: num("duration") * 1000,
    scrape: true,
  });

  console.log(
    `\ncertificates: ${AGENTS + BASELINE_AGENTS} issued in ${Math.round(issueMs)} ms ` +
      `(${round(issueMs / (AGENTS + BASELINE_AGENTS), 2)} ms each)`,
  );
  console.log(
    "each phase: a fresh aggregator process and a fresh database on the same PostgreSQL (fsync on)",
  );
  const rows: [string, (p: PhaseResult) => number][] = [
    ["agents", (p) => p.agents],
    ["targets per agent", (p) => p.targetsPerAgent],
    ["aggregator idle CPU % (before agents)", (p) => round(p.idleCpuPct, 2)],
    ["aggregator idle RSS MB", (p) => mb(p.idleRssBytes)],
    ["connect all agents, s", (p) => round(p.connectMs / 1000)],
    ["TCP connections to the aggregator", (p) => p.connections],
    ["measured seconds", (p) => round(p.seconds)],
    ["results/s produced", (p) => round(p.resultsPerSecond)],
    ["aggregator CPU % of one core", (p) => round(p.aggCpuPct)],
    ["aggregator RSS peak MB", (p) => mb(p.aggRssPeakBytes)],
    ["PostgreSQL CPU % of one core", (p) => round(p.pgCpuPct)],
    ["simulated agents CPU % (their processes)", (p) => round(p.agentsCpuPct)],
    ["simulated agents RSS MB (sum of peaks)", (p) => mb(p.agentsRssBytes)],
    ["ack latency p50 ms", (p) => round(p.p50, 2)],
    ["ack latency p99 ms", (p) => round(p.p99, 2)],
    ["ack latency max ms", (p) => round(p.max, 2)],
    ["results per batch", (p) => round(p.resultsPerBatch, 2)],
    ["(agent, seq) produced", (p) => p.stored.produced],
    ["rows stored (results + quarantined)", (p) => p.stored.rows],
    ["missing", (p) => p.stored.missing],
    ["duplicated", (p) => p.stored.duplicated],
    ["unexpected (never produced)", (p) => p.stored.unexpected],
    ["quarantined", (p) => p.stored.quarantined],
    ["backlog when production stopped", (p) => p.backlogAtStop],
    ["backlog max (1 s samples)", (p) => p.maxBacklog],
    [`backlog after ${DRAIN_MS / 1000} s drain`, (p) => p.backlogAfterDrain],
    ["reconnects", (p) => p.reconnects],
    ["rejects", (p) => p.rejects],
  ];
  const header = ["figure", "baseline", "fleet", "fleet/baseline"];
  const table = rows.map(([label, f]) => {
    const b = f(baseline);
    const v = f(fleet);
    return [label, String(b), String(v), b === 0 ? "-" : String(round(v / b, 2))];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of table) console.log(line(r));

  const s = fleet.scrape;
  if (s !== null) {
    console.log(
      `GET /metrics of the fleet's aggregator (${AGENTS} agents' series): ${Math.round(s.ms)} ms, ` +
        `${Math.round(s.cpuMs)} ms aggregator CPU, ${mb(s.bytes)} MB, ${s.lines} lines; ` +
        `aggregator RSS after it ${mb(s.rssAfterBytes)} MB` +
        (s.ms > PROMETHEUS_SCRAPE_TIMEOUT_MS ? " (longer than Prometheus' default 10 s scrape timeout)" : ""),
    );
  }
  const verdicts = new Verdicts();
  for (const p of [baseline, fleet]) {
    // Behind: a result lost or stored twice, something left unsent, a result that waited longer
    // than one interval for its ack (its target's next run came first), or more than
    // BEHIND_SECONDS of production waiting when production stopped (a queue was building).
    const exact = p.stored.missing === 0 && p.stored.duplicated === 0 && p.stored.unexpected === 0;
    const keptUp =
      exact &&
      p.backlogAfterDrain === 0 &&
      p.connections >= p.agents &&
      p.p99 <= INTERVAL_MS &&
      p.backlogAtStop <= BEHIND_SECONDS * p.resultsPerSecond;
    console.log(
      `${p.name}: ${keptUp ? "kept up" : "FELL BEHIND"} — ${p.stored.produced} produced: missing ${p.stored.missing}, ` +
        `duplicated ${p.stored.duplicated}, unexpected ${p.stored.unexpected}; backlog ${p.backlogAtStop} when production stopped ` +
        `(max ${p.maxBacklog}), ${p.backlogAfterDrain} after the drain wait; ${p.connections}/${p.agents} connections, ` +
        `${p.reconnects} reconnects, ${p.rejects} rejects`,
    );
    if (p.diagnostics !== null) {
      console.log(`${p.name}: the aggregator's PostgreSQL sessions at the end:`);
      console.table(p.diagnostics.activity);
      console.log(`${p.name}: the aggregator's last warnings and errors:`);
      for (const l of p.diagnostics.problems) console.log(JSON.stringify(l));
    }
    verdicts.add({
      figure: `${p.name}: ${p.agents} agents × ${p.targetsPerAgent} targets keep up`,
      value: `missing ${p.stored.missing}, dup ${p.stored.duplicated}, ack p99 ${round(p.p99)} ms`,
      baseline: p === fleet ? `baseline ack p99 ${round(baseline.p99)} ms` : "-",
      ratio: p === fleet ? `p99 ${round(fleet.p99 / baseline.p99, 2)}` : "-",
      goal: `exactly once, p99 ≤ ${INTERVAL_MS} ms, no backlog left`,
      holds: keptUp,
    });
  }
  verdicts.print();
  if (!verdicts.allHold()) process.exitCode = 1;
} finally {
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
  run.end();
}
