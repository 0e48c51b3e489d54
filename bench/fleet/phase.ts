// One phase of bench/fleet, in a world of its own: a fresh database, a fresh
// `smbfleet aggregator` process (its default config unless --pool-size), the
// aggregator's idle cost measured first, then the simulated agents connect,
// produce for the measured window and drain; what PostgreSQL holds is then
// checked pair by pair against what they produced. The baseline and the
// fleet each get one of these, so neither inherits the other's database,
// heap or connections.
import { join } from "node:path";
import { startAggregatorProcess, testSql, type FleetPki, type LogLine } from "../../test/harness/fleet.ts";
import type { RunningPostgres } from "../../test/harness/postgres.ts";
import { cpuMs, establishedTo, percentileOf, rssBytes, treeCpu, treeCpuDelta } from "../shared/proc.ts";
import { pkiFiles, startAgents } from "./agents-child.ts";
import type { AgentsReport } from "./agents.ts";
import { checkStored, type StoredCheck } from "./stored-check.ts";

/** Long enough to measure a slow /metrics (Prometheus itself gives up after 10 s by default). */
const SCRAPE_TIMEOUT_MS = 120_000;
/** RSS is sampled this often. */
const SAMPLE_MS = 500;

export interface PhaseOptions {
  name: string;
  pg: RunningPostgres;
  postmaster: number;
  pki: FleetPki;
  dir: string;
  names: readonly string[];
  targets: number;
  processes: number;
  intervalMs: number;
  durationMs: number;
  idleMs: number;
  drainMs: number;
  connectPerSecond: number;
  poolSize: number | undefined;
  /** GET /metrics once after the phase (outside every measured window). */
  scrape: boolean;
}

export interface Scrape {
  ms: number;
  cpuMs: number;
  bytes: number;
  lines: number;
  rssAfterBytes: number;
}

export interface PhaseResult {
  name: string;
  agents: number;
  targetsPerAgent: number;
  idleCpuPct: number;
  idleRssBytes: number;
  connectMs: number;
  connections: number;
  seconds: number;
  resultsPerSecond: number;
  aggCpuPct: number;
  aggRssPeakBytes: number;
  pgCpuPct: number;
  agentsCpuPct: number;
  agentsRssBytes: number;
  p50: number;
  p99: number;
  max: number;
  stored: StoredCheck;
  backlogAtStop: number;
  maxBacklog: number;
  backlogAfterDrain: number;
  reconnects: number;
  rejects: number;
  /** As the senders batched them (resends included). */
  resultsPerBatch: number;
  scrape: Scrape | null;
  /** When something was lost or duplicated: the aggregator's PostgreSQL sessions and its last warnings. */
  diagnostics: { activity: Record<string, unknown>[]; problems: LogLine[] } | null;
}

const log = (msg: string): void => void process.stderr.write(`[bench:fleet] ${msg}\n`);

export async function runPhase(o: PhaseOptions): Promise<PhaseResult> {
  const databaseUrl = await o.pg.createDatabase(`bench_fleet_${o.name}`);
  const agg = await startAggregatorProcess({
    dir: join(o.dir, `aggregator-${o.name}`),
    name: `aggregator-${o.name}`,
    pki: o.pki,
    databaseUrl,
    env: { ...process.env, SMBFLEET_LOG_LEVEL: "warn" },
    ...(o.poolSize === undefined ? {} : { poolSize: o.poolSize }),
  });
  const sql = testSql(databaseUrl);
  try {
    const idle0 = cpuMs(agg.pid);
    await new Promise((r) => setTimeout(r, o.idleMs));
    const idleCpuPct = ((cpuMs(agg.pid) - idle0) / o.idleMs) * 100;
    const idleRssBytes = rssBytes(agg.pid);
    log(`${o.name}: fresh aggregator (pid ${agg.pid}) idle ${idleCpuPct.toFixed(2)} % CPU`);

    log(`${o.name}: ${o.names.length} agents × ${o.targets} targets every ${o.intervalMs / 1000} s`);
    const children = Array.from({ length: o.processes }, (_, p) =>
      startAgents(o.dir, `${o.name}-${p}`, {
        url: agg.url,
        ca: o.pki.ca,
        agents: o.names
          .filter((_, i) => i % o.processes === p)
          .map((agent) => ({ site: `s${agent.slice(-1)}`, agent, ...pkiFiles(o.pki, agent) })),
        targets: o.targets,
        intervalMs: o.intervalMs,
        connectPerSecond: o.connectPerSecond / o.processes,
        durationMs: o.durationMs,
        drainMs: o.drainMs,
      }),
    );
    const connectStart = performance.now();
    await Promise.all(children.map((c) => c.allConnected));
    const connectMs = performance.now() - connectStart;
    const connections = establishedTo(agg.grpcPort);

    const cpu0 = cpuMs(agg.pid);
    const pg0 = treeCpu(o.postmaster);
    const agents0 = children.reduce((n, c) => n + cpuMs(c.proc.pid!), 0);
    const t0 = performance.now();
    let rssPeak = rssBytes(agg.pid);
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes(agg.pid))), SAMPLE_MS);
    for (const c of children) c.proc.stdin!.write("start\n");
    // CPU over the production window only (the drain wait after it is idle time).
    await new Promise((r) => setTimeout(r, o.durationMs));
    const seconds = (performance.now() - t0) / 1000;
    const aggCpu = cpuMs(agg.pid) - cpu0;
    const pgCpu = treeCpuDelta(pg0, treeCpu(o.postmaster));
    const agentsCpu = children.reduce((n, c) => n + cpuMs(c.proc.pid!), 0) - agents0;
    const reports = await Promise.all(children.map((c) => c.done));
    clearInterval(sampler);
    await Promise.all(children.map((c) => c.exited));

    const producedByAgent = Object.assign({}, ...reports.map((r) => r.producedByAgent)) as Record<
      string,
      number
    >;
    const stored = await checkStored(sql, producedByAgent);
    const scrape = o.scrape ? await scrapeMetrics(agg.httpPort, agg.pid) : null;
    const lost = stored.missing + stored.duplicated + stored.unexpected > 0;
    const diagnostics = lost
      ? {
          activity: (
            await sql`
            SELECT state, wait_event_type || ':' || wait_event AS wait, left(query, 80) AS query, count(*)::int AS n
            FROM pg_stat_activity WHERE application_name LIKE 'smbfleet-aggregator%'
            GROUP BY 1, 2, 3 ORDER BY n DESC`
          ).map((r) => ({ ...r })),
          problems: agg.logs.filter((l) => (l.level ?? 0) >= 40).slice(-10),
        }
      : null;

    const latencies = reports.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
    const sum = (f: (r: AgentsReport) => number): number => reports.reduce((n, r) => n + f(r), 0);
    return {
      name: o.name,
      agents: o.names.length,
      targetsPerAgent: o.targets,
      idleCpuPct,
      idleRssBytes,
      connectMs,
      connections,
      seconds,
      resultsPerSecond: sum((r) => r.produced) / seconds,
      aggCpuPct: (aggCpu / 1000 / seconds) * 100,
      aggRssPeakBytes: rssPeak,
      pgCpuPct: (pgCpu / 1000 / seconds) * 100,
      agentsCpuPct: (agentsCpu / 1000 / seconds) * 100,
      agentsRssBytes: sum((r) => r.maxRssBytes),
      p50: percentileOf(latencies, 50),
      p99: percentileOf(latencies, 99),
      max: latencies.at(-1) ?? Number.NaN,
      stored,
      backlogAtStop: sum((r) => r.backlogAtStop),
      maxBacklog: sum((r) => r.maxBacklog),
      backlogAfterDrain: sum((r) => r.backlogAfterDrain),
      reconnects: sum((r) => r.reconnects),
      rejects: sum((r) => r.rejects),
      resultsPerBatch: sum((r) => r.sentResults) / sum((r) => r.sentBatches),
      scrape,
      diagnostics,
    };
  } finally {
    await sql.end();
    await agg.stop();
  }
}

async function scrapeMetrics(httpPort: number, pid: number): Promise<Scrape> {
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, {
    signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS),
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  return {
    ms,
    cpuMs: cpuMs(pid) - cpu0,
    bytes: Buffer.byteLength(text),
    lines: text.split("\n").length,
    rssAfterBytes: rssBytes(pid),
  };
}
