// `make demo`: a two-site fleet on loopback. The demo starts a real Samba and
// a real PostgreSQL, makes the fleet PKI, runs `smbfleet aggregator` (mTLS)
// and one `smbfleet agent` per site ("paris", "berlin"), each with an
// agent.toml in smbprobe's format plus [agent]/[aggregator] and its own
// certificate. Both sites probe the writable share (healthy); paris also the
// read-only one (UNHEALTHY: writes are denied), so both outcomes are on
// screen. The summary is read from the aggregator's /metrics (site- and
// agent-labelled) and PostgreSQL, i.e. from HQ, not from the agents.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createFleetPki,
  startAggregatorProcess,
  testSql,
  type AggregatorProcess,
  type FleetPki,
} from "../test/harness/fleet.ts";
import { startPostgres, type RunningPostgres } from "../test/harness/postgres.ts";
import { startSamba, type SambaServer } from "../test/harness/samba.ts";
import { startAgentProcess, type AgentProcess } from "./agent-process.ts";
import {
  DEMO_INTERVAL_SECONDS,
  FIRST_RESULTS_TIMEOUT_MS,
  demoChildEnv,
  writeDemoConfig,
  type DemoTarget,
} from "./demo-config.ts";
import type { DemoOptions } from "./demo-standalone.ts";
import {
  MEDIAN_NOTE,
  formatTarget,
  log,
  pause,
  summariseTarget,
  type TargetSummary,
} from "./demo-summary.ts";
import { parseMetrics } from "./prom-text.ts";

/** The aggregator's /metrics is polled this often while waiting. */
const POLL_MS = 250;
/** How often the running demo checks that its smbfleet processes are still alive. */
const ALIVE_POLL_MS = 1_000;
const DATABASE = "smbfleet";

interface Site {
  site: string;
  agent: string;
  /** share → expected healthy */
  shares: Record<string, boolean>;
}

/** Both sites probe the writable share; paris also the read-only one, which must come out UNHEALTHY. */
const SITES: readonly Site[] = [
  { site: "paris", agent: "paris-01", shares: { writable: true, readonly: false } },
  { site: "berlin", agent: "berlin-01", shares: { writable: true } },
];

interface SiteSummary {
  site: Site;
  url: string;
  targets: TargetSummary[];
}

/** Everything started so far, stopped in reverse order whatever happened. */
interface Started {
  samba?: SambaServer;
  pg?: RunningPostgres;
  aggregator?: AggregatorProcess;
  agents: Array<{ site: Site; process: AgentProcess }>;
}

export async function runFleetDemo(o: DemoOptions): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "smbfleet-demo-"));
  const started: Started = { agents: [] };
  // A second Ctrl-C: the smbfleet processes are killed instead of drained.
  const onForce = (): void => {
    for (const a of started.agents) a.process.child.kill("SIGKILL");
    void started.aggregator?.kill("SIGKILL");
  };
  o.force.addEventListener("abort", onForce, { once: true });
  try {
    const summary = await startAndSummarise(o, dir, started);
    if (summary === null) return 1;
    if (o.once) return summary.asExpected ? 0 : 1;
    log("running; press Ctrl-C to stop");
    while (!o.signal.aborted && allRunning(started)) await pause(ALIVE_POLL_MS, o.signal);
    if (!o.signal.aborted) {
      log("an smbfleet process exited on its own; stopping the demo");
      return 1;
    }
    return summary.asExpected ? 0 : 1;
  } finally {
    const clean = await stopAll(started);
    o.force.removeEventListener("abort", onForce);
    rmSync(dir, { recursive: true, force: true });
    log(clean ? "everything stopped, temp files removed" : "stopped, but not cleanly (see above)");
  }
}

async function startAndSummarise(
  o: DemoOptions,
  dir: string,
  started: Started,
): Promise<{ asExpected: boolean } | null> {
  const env = demoChildEnv(o.env);
  log("starting Samba and PostgreSQL on loopback, creating the fleet PKI ...");
  // Own process groups (detached): Ctrl-C reaches only the demo, which stops
  // the agents, then the aggregator, then the database, each once.
  const [samba, pg, pki] = await Promise.allSettled([
    startSamba(),
    startPostgres({ detached: true }),
    createFleetPki(join(dir, "pki")),
  ]);
  if (samba.status === "fulfilled") started.samba = samba.value;
  if (pg.status === "fulfilled") started.pg = pg.value;
  for (const r of [samba, pg, pki]) if (r.status === "rejected") throw r.reason;
  if (samba.status !== "fulfilled" || pg.status !== "fulfilled" || pki.status !== "fulfilled") return null;
  log(
    `Samba listening on ${samba.value.host}:${samba.value.port} (shares: writable, readonly; in ${samba.value.dir})`,
  );
  const databaseUrl = await pg.value.createDatabase(DATABASE);
  log(`PostgreSQL listening on 127.0.0.1:${pg.value.port} (in ${pg.value.dir})`);
  log(`fleet CA and certificates in ${pki.value.dir}`);
  if (o.signal.aborted) return interrupted();

  const aggregator = await startAggregatorProcess({
    dir: join(dir, "aggregator"),
    pki: pki.value,
    databaseUrl,
    env,
    detached: true,
  });
  started.aggregator = aggregator;
  log(
    `aggregator running (pid ${aggregator.pid}, gRPC ${aggregator.url} mTLS, config ${aggregator.configFile})`,
  );
  if (o.signal.aborted) return interrupted();

  const starts = await Promise.allSettled(
    SITES.map((site) => startSiteAgent(site, samba.value, pki.value, aggregator, dir, env)),
  );
  // Every agent that did start is stopped, even when its sibling failed to.
  const agents = starts.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  started.agents.push(...agents);
  for (const r of starts) if (r.status === "rejected") throw r.reason;
  for (const a of agents) log(`agent ${a.site.agent} (site ${a.site.site}) running (pid ${a.process.pid})`);
  log("waiting until the aggregator has results from both sites ...");

  const sites = await waitForFleetResults(aggregator, agents, o.signal);
  if (sites === null) {
    if (o.signal.aborted) return interrupted();
    log("no results from both sites in time; the last log lines follow");
    for (const l of aggregator.logs.slice(-10)) log(`aggregator: ${JSON.stringify(l)}`);
    for (const a of agents)
      for (const l of a.process.logs.slice(-10)) log(`${a.site.agent}: ${JSON.stringify(l)}`);
    return null;
  }
  const db = await readDatabase(databaseUrl);
  for (const s of sites) {
    for (const t of s.targets) t.failureClasses = db.failureClasses.get(key(s.site, t.share)) ?? [];
  }
  process.stdout.write(formatSummary(sites, aggregator, databaseUrl, db.rows));
  // The demo shows healthy writable shares and an unhealthy read-only one; anything else means it is broken.
  const surprises = sites.flatMap((s) =>
    s.targets
      .filter((t) => s.site.shares[t.share] !== t.healthy)
      .map((t) => `${s.site.site} //${t.share} is ${t.healthy ? "healthy" : "UNHEALTHY"}`),
  );
  for (const x of surprises)
    log(`unexpected: ${x} (writable shares should be healthy, the read-only one not)`);
  return { asExpected: surprises.length === 0 };
}

function interrupted(): null {
  log("interrupted");
  return null;
}

async function startSiteAgent(
  site: Site,
  samba: SambaServer,
  pki: FleetPki,
  aggregator: AggregatorProcess,
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ site: Site; process: AgentProcess }> {
  const files = await pki.agent(site.site, site.agent);
  const targets: DemoTarget[] = Object.keys(site.shares).map((share) => ({
    name: `${site.site}-${share}`,
    share,
    interval: DEMO_INTERVAL_SECONDS,
  }));
  const agentDir = join(dir, site.agent);
  mkdirSync(agentDir);
  const config = writeDemoConfig(samba, agentDir, {
    targets,
    httpListen: "127.0.0.1:0",
    site: site.site,
    agentId: site.agent,
    aggregator: { url: aggregator.url, ca: files.ca, cert: files.cert, key: files.key },
  });
  log(`${site.agent}: config ${config} (smbprobe format + [agent]/[aggregator], password in .secrets.toml)`);
  return { site, process: await startAgentProcess(config, { env, detached: true }) };
}

/** Polls the aggregator's /metrics until every site's every target has a result there. */
async function waitForFleetResults(
  aggregator: AggregatorProcess,
  agents: ReadonlyArray<{ site: Site; process: AgentProcess }>,
  signal: AbortSignal,
): Promise<SiteSummary[] | null> {
  const deadline = Date.now() + FIRST_RESULTS_TIMEOUT_MS;
  const started: Started = { aggregator, agents: [...agents] };
  while (Date.now() < deadline && !signal.aborted && allRunning(started)) {
    try {
      const res = await fetch(`http://127.0.0.1:${aggregator.httpPort}/metrics`);
      const samples = parseMetrics(await res.text());
      const sites = agents.map(({ site, process }) => ({
        site,
        url: process.url,
        targets: Object.keys(site.shares).map((share) =>
          summariseTarget(samples, { site: site.site, agent: site.agent, share }),
        ),
      }));
      if (sites.every((s) => s.targets.every((t) => t !== null))) return sites as SiteSummary[];
    } catch {
      // The aggregator is busy or restarting: try again.
    }
    await pause(POLL_MS, signal);
  }
  return null;
}

const key = (site: Site, share: string): string => `${site.site}\u0000${site.agent}\u0000${share}`;

/** What HQ stored: result rows per site, and the failure classes of each target's unhealthy runs. */
async function readDatabase(
  url: string,
): Promise<{ rows: Map<string, number>; failureClasses: Map<string, string[]> }> {
  const sql = testSql(url);
  try {
    const counts = await sql<{ site: string; n: number }[]>`
      SELECT site, count(*)::int AS n FROM results GROUP BY site ORDER BY site`;
    const classes = await sql<{ site: string; agent: string; share: string; classes: string[] }[]>`
      SELECT r.site, r.agent_id AS agent, t.share, array_agg(DISTINCT r.failure_class) AS classes
      FROM results r JOIN targets t ON t.id = r.target_id
      WHERE NOT r.healthy AND r.failure_class IS NOT NULL
      GROUP BY r.site, r.agent_id, t.share`;
    return {
      rows: new Map(counts.map((c) => [c.site, c.n])),
      failureClasses: new Map(classes.map((c) => [`${c.site}\u0000${c.agent}\u0000${c.share}`, c.classes])),
    };
  } finally {
    await sql.end({ timeout: 2 });
  }
}

function formatSummary(
  sites: SiteSummary[],
  aggregator: AggregatorProcess,
  databaseUrl: string,
  rows: Map<string, number>,
): string {
  const http = `http://127.0.0.1:${aggregator.httpPort}`;
  const lines = ["", "smbfleet demo: two sites, one aggregator (read from the aggregator's /metrics)", ""];
  for (const s of sites) {
    lines.push(`  site ${s.site.site}, agent ${s.site.agent}`);
    for (const t of s.targets) lines.push(...formatTarget(t, 4));
    lines.push("");
  }
  lines.push(`  ${MEDIAN_NOTE}`, "");
  lines.push(`  aggregator  metrics: ${http}/metrics   health: ${http}/healthz   ready: ${http}/readyz`);
  lines.push(`              gRPC (mTLS): ${aggregator.url}`);
  for (const s of sites) lines.push(`  agent ${s.site.agent.padEnd(10)} metrics: ${s.url}/metrics`);
  const total = [...rows.values()].reduce((a, b) => a + b, 0);
  const perSite = [...rows].map(([site, n]) => `${site} ${n}`).join(", ");
  lines.push(`  PostgreSQL  ${databaseUrl}   results: ${total} rows (${perSite})`, "");
  return lines.join("\n");
}

function allRunning(s: Started): boolean {
  return (
    (s.aggregator?.running() ?? true) &&
    s.agents.every((a) => a.process.child.exitCode === null && a.process.child.signalCode === null)
  );
}

/** Agents first (they flush to the aggregator), then the aggregator, then what it writes to. True if all stopped cleanly. */
async function stopAll(s: Started): Promise<boolean> {
  let clean = true;
  const step = async (what: string, stop: () => Promise<number | null | undefined>): Promise<void> => {
    try {
      const code = await stop();
      const ok = code === undefined || code === 0;
      if (!ok) clean = false;
      log(`${what} stopped${code === undefined ? "" : ` (exit ${String(code)})`}`);
    } catch (err) {
      clean = false;
      log(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  await Promise.all(s.agents.map((a) => step(`agent ${a.site.agent}`, () => a.process.stop())));
  if (s.aggregator !== undefined) await step("aggregator", () => s.aggregator!.stop());
  if (s.pg !== undefined) await step("PostgreSQL", () => s.pg!.stop().then(() => undefined));
  if (s.samba !== undefined) await step("Samba", () => s.samba!.stop().then(() => undefined));
  return clean;
}
