// bench/fleet: many simulated agents against ONE aggregator process with
// PostgreSQL (fsync on). Each agent has its own certificate (issueAgent) and
// its own stream on its own TCP connection (counted from /proc/net/tcp), 10
// targets, a 10 s interval: 1,000 agents make ~1,000 results/s. The agents
// run in separate Node processes (bench/fleet/agents.ts), never in the
// aggregator's. Reported per phase: aggregator CPU (from /proc/<pid>/stat)
// and peak RSS, PostgreSQL CPU, ack latency p50/p99 (result accepted by the
// sender → acked; the sender's window is never full at this rate, so this is
// batch send → ack), and whether anything fell behind (backlog when
// production stopped, results stored vs produced).
//
// Baselines in the same run: the aggregator idle, and the same results/s
// from few agents (10 × 100 targets) — the ratio shows what 1,000 streams
// cost over the same work from 10.
//
//   npm run bench:fleet [-- --agents 1000 --duration 60 --processes 2]
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createFleetPki, startAggregatorProcess, testSql, type FleetPki } from "../../test/harness/fleet.ts";
import { findProcesses } from "../../test/harness/ports.ts";
import { startPostgres } from "../../test/harness/postgres.ts";
import type { AgentsConfig, AgentsReport } from "./agents.ts";
import { cpuMs, establishedTo, percentileOf, rssBytes, treeCpu, treeCpuDelta } from "../shared/proc.ts";

const { values } = parseArgs({
  options: {
    agents: { type: "string", default: "1000" },
    targets: { type: "string", default: "10" },
    interval: { type: "string", default: "10" },
    duration: { type: "string", default: "60" },
    processes: { type: "string", default: "2" },
    "baseline-agents": { type: "string", default: "10" },
    "baseline-duration": { type: "string", default: "30" },
    "connect-per-second": { type: "string", default: "100" },
    // The aggregator's [database] pool_size (its default when absent).
    "pool-size": { type: "string" },
  },
});
const num = (name: keyof typeof values): number => {
  const v = Number(values[name]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name}: a positive number, not ${values[name]}`);
  return v;
};
const AGENTS = num("agents");
const TARGETS = num("targets");
const INTERVAL_MS = num("interval") * 1000;
const DURATION_MS = num("duration") * 1000;
const PROCESSES = num("processes");
const BASELINE_AGENTS = num("baseline-agents");
const BASELINE_DURATION_MS = num("baseline-duration") * 1000;
const CONNECT_PER_SECOND = num("connect-per-second");
const POOL_SIZE = values["pool-size"] === undefined ? undefined : num("pool-size");

/** Aggregator CPU with nothing connected is sampled this long. */
const IDLE_MS = 10_000;
/** After production stops, agents get this long to drain what they hold. */
const DRAIN_MS = 30_000;
/** Connecting 1,000 agents at 100/s takes 10 s; a phase that cannot connect in this gives up. */
const CONNECT_DEADLINE_MS = 180_000;
/** More than this many seconds of production unacked when production stops means a queue was building. */
const BEHIND_SECONDS = 2;
/** Long enough to measure a slow /metrics (Prometheus itself gives up after 10 s by default). */
const SCRAPE_TIMEOUT_MS = 120_000;
const PROMETHEUS_SCRAPE_TIMEOUT_MS = 10_000;
/** RSS is sampled this often. */
const SAMPLE_MS = 500;

interface PhaseResult {
  name: string;
  agents: number;
  targetsPerAgent: number;
  connections: number;
  seconds: number;
  resultsPerSecond: number;
  aggCpuPct: number;
  aggRssPeakMb: number;
  pgCpuPct: number;
  agentsCpuPct: number;
  agentsRssMb: number;
  p50: number;
  p99: number;
  max: number;
  produced: number;
  acked: number;
  stored: number;
  backlogAtStop: number;
  maxBacklog: number;
  backlogAfterDrain: number;
  reconnects: number;
  rejects: number;
  /** As the senders batched them (resends included). */
  resultsPerBatch: number;
}

const mb = (b: number): number => Math.round(b / 1048576);
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;
const log = (msg: string): void => void process.stderr.write(`[bench:fleet] ${msg}\n`);

const dir = mkdtempSync(join(tmpdir(), "smbfleet-bench-fleet-"));
const pg = await startPostgres({ fsync: true });
try {
  const databaseUrl = await pg.createDatabase("bench_fleet");
  const pki = await createFleetPki(join(dir, "pki"));
  const baselineTargets = Math.round((AGENTS * TARGETS) / BASELINE_AGENTS);
  const issueStart = performance.now();
  const fleetNames = Array.from({ length: AGENTS }, (_, i) => `a${String(i).padStart(4, "0")}`);
  const baselineNames = Array.from({ length: BASELINE_AGENTS }, (_, i) => `b${String(i).padStart(4, "0")}`);
  for (const name of [...baselineNames, ...fleetNames]) await pki.agent(`s${name.slice(-1)}`, name);
  const issueMs = performance.now() - issueStart;
  log(`issued ${AGENTS + BASELINE_AGENTS} agent certificates in ${Math.round(issueMs)} ms`);

  const agg = await startAggregatorProcess({
    dir: join(dir, "aggregator"),
    pki,
    databaseUrl,
    env: { ...process.env, SMBFLEET_LOG_LEVEL: "warn" },
    ...(POOL_SIZE === undefined ? {} : { poolSize: POOL_SIZE }),
  });
  const sql = testSql(databaseUrl);
  const postmaster = findProcesses((argv) => argv.some((a) => a.startsWith(pg.dir)))[0]?.pid;
  if (postmaster === undefined) throw new Error("cannot find the postmaster's pid");

  const idleCpu0 = cpuMs(agg.pid);
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const idleCpuPct = ((cpuMs(agg.pid) - idleCpu0) / IDLE_MS) * 100;
  const idleRssMb = mb(rssBytes(agg.pid));
  log(`aggregator idle: ${round(idleCpuPct, 2)} % CPU, ${idleRssMb} MB RSS`);

  const runPhase = async (
    name: string,
    names: string[],
    targets: number,
    processes: number,
    durationMs: number,
  ): Promise<PhaseResult> => {
    log(
      `${name}: ${names.length} agents × ${targets} targets every ${INTERVAL_MS / 1000} s, ${processes} process(es)`,
    );
    const children = Array.from({ length: processes }, (_, p) =>
      startAgents(dir, `${name}-${p}`, {
        url: agg.url,
        ca: pki.ca,
        agents: names
          .filter((_, i) => i % processes === p)
          .map((agent) => ({ site: `s${agent.slice(-1)}`, agent, ...pkiFiles(pki, agent) })),
        targets,
        intervalMs: INTERVAL_MS,
        connectPerSecond: CONNECT_PER_SECOND / processes,
        durationMs,
        drainMs: DRAIN_MS,
      }),
    );
    const connectStart = Date.now();
    await Promise.all(children.map((c) => c.allConnected));
    const connections = establishedTo(agg.grpcPort);
    log(
      `${name}: ${names.length} connected in ${Date.now() - connectStart} ms; ${connections} TCP connections to the aggregator`,
    );

    const cpu0 = cpuMs(agg.pid);
    const pg0 = treeCpu(postmaster);
    const agents0 = children.reduce((n, c) => n + cpuMs(c.proc.pid!), 0);
    const t0 = performance.now();
    let rssPeak = rssBytes(agg.pid);
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes(agg.pid))), SAMPLE_MS);
    for (const c of children) c.proc.stdin!.write("start\n");
    // CPU over the production window only (the drain wait after it is idle time).
    await new Promise((r) => setTimeout(r, durationMs));
    const seconds = (performance.now() - t0) / 1000;
    const aggCpu = cpuMs(agg.pid) - cpu0;
    const pgCpu = treeCpuDelta(pg0, treeCpu(postmaster));
    const agentsCpu = children.reduce((n, c) => n + cpuMs(c.proc.pid!), 0) - agents0;
    const reports = await Promise.all(children.map((c) => c.done));
    clearInterval(sampler);
    await Promise.all(children.map((c) => c.exited));

    const [row] = await sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM results WHERE agent_id = ANY(${names})`;
    const latencies = reports.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
    const sum = (f: (r: AgentsReport) => number): number => reports.reduce((n, r) => n + f(r), 0);
    return {
      name,
      agents: names.length,
      targetsPerAgent: targets,
      connections,
      seconds: round(seconds),
      resultsPerSecond: round(sum((r) => r.produced) / seconds),
      aggCpuPct: round((aggCpu / 1000 / seconds) * 100),
      aggRssPeakMb: mb(rssPeak),
      pgCpuPct: round((pgCpu / 1000 / seconds) * 100),
      agentsCpuPct: round((agentsCpu / 1000 / seconds) * 100),
      agentsRssMb: mb(sum((r) => r.maxRssBytes)),
      p50: round(percentileOf(latencies, 50), 2),
      p99: round(percentileOf(latencies, 99), 2),
      max: round(latencies.at(-1) ?? Number.NaN, 2),
      produced: sum((r) => r.produced),
      acked: sum((r) => r.acked),
      stored: row?.n ?? 0,
      backlogAtStop: sum((r) => r.backlogAtStop),
      maxBacklog: sum((r) => r.maxBacklog),
      backlogAfterDrain: sum((r) => r.backlogAfterDrain),
      reconnects: sum((r) => r.reconnects),
      rejects: sum((r) => r.rejects),
      resultsPerBatch: round(sum((r) => r.sentResults) / sum((r) => r.sentBatches), 2),
    };
  };

  const baseline = await runPhase("baseline", baselineNames, baselineTargets, 1, BASELINE_DURATION_MS);
  const fleet = await runPhase("fleet", fleetNames, TARGETS, PROCESSES, DURATION_MS);
  // Outside every measured window: rendering every agent's and target's series is itself work
  // (and allocation) for the aggregator, as a Prometheus scrape would be.
  const scrapeCpu0 = cpuMs(agg.pid);
  const scraped = await scrape(agg.httpPort);
  const scrapeCpuMs = cpuMs(agg.pid) - scrapeCpu0;
  const rssAfterScrape = rssBytes(agg.pid);
  // When a phase fell behind, what the aggregator's connections were doing and what it logged.
  const activity = await sql<{ state: string | null; wait: string | null; query: string; n: number }[]>`
    SELECT state, wait_event_type || ':' || wait_event AS wait, left(query, 80) AS query, count(*)::int AS n
    FROM pg_stat_activity WHERE application_name LIKE 'smbfleet-aggregator%'
    GROUP BY 1, 2, 3 ORDER BY n DESC`;
  const problems = agg.logs.filter((l) => (l.level ?? 0) >= 40);
  await sql.end();
  await agg.stop();

  const machine = `${availableParallelism()} × ${cpus()[0]?.model ?? "?"}, ${mb(totalmem())} MB RAM, node ${process.version}`;
  console.log(`bench/fleet  ${new Date().toISOString()}  ${machine}`);
  console.log(
    `certificates: ${AGENTS + BASELINE_AGENTS} issued in ${Math.round(issueMs)} ms (${round(issueMs / (AGENTS + BASELINE_AGENTS), 2)} ms each)`,
  );
  console.log(`aggregator idle: ${round(idleCpuPct, 2)} % of one core, ${idleRssMb} MB RSS`);
  const ratio = (f: (p: PhaseResult) => number): number => round(f(fleet) / f(baseline), 2);
  const rows: [string, (p: PhaseResult) => number][] = [
    ["agents", (p) => p.agents],
    ["targets per agent", (p) => p.targetsPerAgent],
    ["TCP connections to the aggregator", (p) => p.connections],
    ["measured seconds", (p) => p.seconds],
    ["results/s produced", (p) => p.resultsPerSecond],
    ["aggregator CPU % of one core", (p) => p.aggCpuPct],
    ["aggregator RSS peak MB", (p) => p.aggRssPeakMb],
    ["PostgreSQL CPU % of one core", (p) => p.pgCpuPct],
    ["simulated agents CPU % (their processes)", (p) => p.agentsCpuPct],
    ["simulated agents RSS MB (sum of peaks)", (p) => p.agentsRssMb],
    ["ack latency p50 ms", (p) => p.p50],
    ["ack latency p99 ms", (p) => p.p99],
    ["ack latency max ms", (p) => p.max],
    ["results per batch", (p) => p.resultsPerBatch],
  ];
  console.table(
    Object.fromEntries(
      rows.map(([label, f]) => [
        label,
        { baseline: f(baseline), fleet: f(fleet), "fleet/baseline": ratio(f) },
      ]),
    ),
  );
  console.log(
    `GET /metrics with ${AGENTS + BASELINE_AGENTS} agents' series: ${Math.round(scraped.ms)} ms, ` +
      `${Math.round(scrapeCpuMs)} ms aggregator CPU, ${mb(scraped.bytes)} MB, ${scraped.lines} lines; ` +
      `aggregator RSS after it ${mb(rssAfterScrape)} MB` +
      (scraped.ms > PROMETHEUS_SCRAPE_TIMEOUT_MS
        ? " (longer than Prometheus' default 10 s scrape timeout)"
        : ""),
  );
  for (const p of [baseline, fleet]) {
    // Behind: something never landed, a result waited longer than one interval for its ack
    // (its target's next run came first), or more than BEHIND_SECONDS of production was
    // waiting when production stopped (a queue was building, not draining).
    const behind =
      p.backlogAfterDrain > 0 ||
      p.stored !== p.produced ||
      p.connections < p.agents ||
      p.p99 > INTERVAL_MS ||
      p.backlogAtStop > BEHIND_SECONDS * p.resultsPerSecond;
    console.log(
      `${p.name}: ${behind ? "FELL BEHIND" : "kept up"} — stored ${p.stored} of ${p.produced} produced, ` +
        `backlog ${p.backlogAtStop} when production stopped (max ${p.maxBacklog}), ${p.backlogAfterDrain} after ${DRAIN_MS / 1000} s, ` +
        `${p.connections}/${p.agents} connections, ${p.reconnects} reconnects, ${p.rejects} rejects`,
    );
  }
  if (fleet.stored !== fleet.produced || baseline.stored !== baseline.produced) {
    console.log("aggregator's PostgreSQL connections at the end:");
    console.table(activity.map((a) => ({ ...a })));
    console.log(`aggregator warnings and errors: ${problems.length}; the last ones:`);
    for (const l of problems.slice(-10)) console.log(JSON.stringify(l));
  }
} finally {
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
}

interface Scrape {
  ms: number;
  bytes: number;
  lines: number;
}

async function scrape(httpPort: number): Promise<Scrape> {
  const t0 = performance.now();
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, {
    signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS),
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  return {
    ms,
    bytes: Buffer.byteLength(text),
    lines: text.split("\n").length,
  };
}

function pkiFiles(pki: FleetPki, agent: string): { cert: string; key: string } {
  return { cert: join(pki.dir, "agents", `${agent}.pem`), key: join(pki.dir, "agents", `${agent}-key.pem`) };
}

interface AgentsChild {
  proc: ChildProcess;
  allConnected: Promise<void>;
  done: Promise<AgentsReport>;
  exited: Promise<void>;
}

function startAgents(root: string, name: string, config: AgentsConfig): AgentsChild {
  const file = join(root, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  const proc = spawn(process.execPath, [join(import.meta.dirname, "agents.ts"), file], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  let connected = 0;
  let onConnected: () => void = () => {};
  let onReport: (r: AgentsReport) => void = () => {};
  createInterface({ input: proc.stdout }).on("line", (line) => {
    const msg = JSON.parse(line) as { type: string; n?: number };
    if (msg.type === "connected") {
      connected = msg.n ?? 0;
      if (connected === config.agents.length) onConnected();
    } else if (msg.type === "done") {
      onReport(msg as AgentsReport);
    }
  });
  const allConnected = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(
        new Error(
          `${name}: only ${connected} of ${config.agents.length} agents connected in ${CONNECT_DEADLINE_MS} ms`,
        ),
      );
    }, CONNECT_DEADLINE_MS);
    onConnected = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  const done = new Promise<AgentsReport>((resolve, reject) => {
    onReport = resolve;
    void exited.then(() => reject(new Error(`${name}: exited without a report`)));
  });
  // Handled where awaited; this keeps an early exit from being an unhandled rejection meanwhile.
  done.catch(() => undefined);
  return { proc, allConnected, done, exited };
}
