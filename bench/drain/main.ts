// bench/drain: the real `smbfleet agent`, as deployed (bin/smbfleet with its
// V8 flags; a full config: [agent] with its HTTP listener, [aggregator],
// [[probes]]), starts on a buffer holding RESULTS results while the
// aggregator is down; then `smbfleet aggregator` starts, and the run is timed
// until PostgreSQL holds every one of them. Goals: drain ≤ 30 s, agent peak
// RSS ≤ 150 MB. Each run (RUNS, default 3) uses a fresh copy of the buffer,
// a fresh database and fresh processes.
//
//   Buffer: filled once with the agent's own buffer module (appendMany:
//     smbprobe-shaped results, their size printed), then copied for each
//     run; buffer_max_bytes is raised to hold them (the default, 256 MiB,
//     holds fewer than a million of these).
//   Probes: the agent's targets probe a real Samba (test/harness) by default,
//     or with --probes unreachable a closed loopback port (every run fails
//     fast with `unreachable`); either way smbclient runs.
//   Drain time: from the aggregator answering /readyz to the agent's
//     high-water sequence reaching RESULTS (polled every 100 ms), which
//     includes the agent's reconnect backoff; also printed from the agent's
//     TCP connection being established. Exactly once: every seq 1..RESULTS
//     stored once, read at the end (missing and duplicated counted).
//   Peak RSS: the agent process's VmHWM (exact), and the agent with its
//     descendants (smbclient), VmRSS summed, sampled every 200 ms from /proc
//     (shared libraries count once per process, so this overstates what
//     they take together). Both are judged against the goal.
//   Baselines from the same run: reading the buffer back in the sender's
//     batches without sending (time), and the agent's peak RSS before the
//     aggregator started (memory).
//
//   npm run bench:drain [-- --results N --runs N --targets N --interval S --probes samba|unreachable]
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { AGGREGATOR_DEFAULTS } from "../../shared/config/defaults.ts";
import { agentNodeFlags } from "../../shared/launcher.ts";
import { createFleetPki, type FleetPki } from "../../test/harness/fleet.ts";
import { freePort } from "../../test/harness/ports.ts";
import { startPostgres, type RunningPostgres } from "../../test/harness/postgres.ts";
import { startSamba, type SambaServer } from "../../test/harness/samba.ts";
import { establishedTo } from "../shared/proc.ts";
import { startRun } from "../shared/run-info.ts";
import { Verdicts } from "../shared/verdict.ts";
import { prepareAggregatorSide } from "./aggregator-side.ts";
import { startAgentProcess, writeAgentConfig, type ProbeTargets } from "./agent-process.ts";
import { fillBuffer, readAll } from "./fill.ts";
import { readLogFile, summarize } from "./log-summary.ts";

const DEFAULTS = { results: 1_000_000, runs: 3, targets: 10, interval: 60, probes: "samba" };
const GOAL_DRAIN_MS = 30_000;
/** MB = 10^6 bytes. */
const GOAL_RSS_BYTES = 150e6;
/** The run fails if PostgreSQL does not hold everything by then: 10× the goal. */
const DRAIN_DEADLINE_MS = 300_000;
/** How long the agent runs with the aggregator down before it starts (it probes and retries meanwhile). */
const AGGREGATOR_DOWN_MS = 3_000;
const POLL_MS = 100;
const SITE = "bench";
const AGENT_ID = "bench-01";
/** Room for the filled buffer and what the probes add meanwhile. */
const bufferMaxBytesFor = (protobufBytes: number): number => Math.max(256 * 2 ** 20, 2 * protobufBytes);

const { values } = parseArgs({
  options: {
    results: { type: "string", default: String(DEFAULTS.results) },
    runs: { type: "string", default: String(DEFAULTS.runs) },
    targets: { type: "string", default: String(DEFAULTS.targets) },
    interval: { type: "string", default: String(DEFAULTS.interval) },
    probes: { type: "string", default: DEFAULTS.probes },
  },
});
const int = (name: "results" | "runs" | "targets" | "interval"): number => {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name}: a positive integer, not ${values[name]}`);
  return v;
};
const total = int("results");
const runs = int("runs");
const targets = int("targets");
const interval = int("interval");
if (values.probes !== "samba" && values.probes !== "unreachable") {
  throw new Error(`--probes: samba or unreachable, not ${values.probes}`);
}
const probeKind = values.probes;

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

interface RunFigures {
  drainMs: number | null;
  afterConnectMs: number | null;
  baselineMs: number;
  agentPeak: number;
  /** Highest sample of agent + smbclients, VmRSS summed. */
  rssWithChildren: number;
  rssBeforeAggregator: number;
  ok: boolean;
}

async function oneRun(
  n: number,
  ctx: { pg: RunningPostgres; pki: FleetPki; root: string; template: string; protobufBytes: number },
  probes: ProbeTargets,
): Promise<RunFigures> {
  console.log(`\n## run ${n} of ${runs}`);
  const dir = join(ctx.root, `run-${n}`);
  mkdirSync(dir, { recursive: true });
  const bufferPath = join(dir, "buffer.db");
  copyFileSync(ctx.template, bufferPath);
  const baselineMs = readAll(bufferPath, total);
  console.log(
    `baseline: reading the ${total} buffered results back in the sender's batches, not sending: ${s(baselineMs)}`,
  );

  const side = await prepareAggregatorSide(ctx.pg, `drain_${n}`, join(dir, "aggregator"), ctx.pki);
  const tls = await ctx.pki.agent(SITE, AGENT_ID);
  const httpPort = await freePort();
  const configFile = writeAgentConfig({
    dir: join(dir, "agent"),
    site: SITE,
    agent: AGENT_ID,
    bufferPath,
    bufferMaxBytes: bufferMaxBytesFor(ctx.protobufBytes),
    httpPort,
    aggregatorUrl: side.url,
    tls,
    probes,
    targets,
    intervalSeconds: interval,
  });
  const agent = await startAgentProcess(configFile, httpPort);
  try {
    console.log(
      `agent: bin/smbfleet agent (pid ${agent.pid}), /healthz after ${s(agent.healthyAt - agent.spawnedAt)}; ` +
        `aggregator down for ${s(AGGREGATOR_DOWN_MS)} more`,
    );
    await new Promise((r) => setTimeout(r, AGGREGATOR_DOWN_MS));
    const before = agent.memory();
    const aggStart = performance.now();
    await side.start();
    const readyAt = performance.now();
    const cpu0 = { agent: agent.cpu(), server: side.cpuMs() };
    let connectedAt: number | null = null;
    let doneAt: number | null = null;
    while (performance.now() - readyAt < DRAIN_DEADLINE_MS) {
      if (connectedAt === null && establishedTo(side.grpcPort) > 0) connectedAt = performance.now();
      if ((await side.highWater(AGENT_ID)) >= total) {
        doneAt = performance.now();
        break;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const cpu1 = { agent: agent.cpu(), server: side.cpuMs() };
    const mem = agent.memory();
    const exit = await agent.stop();
    const stored = await side.check(AGENT_ID, total);

    const drainMs = doneAt === null ? null : doneAt - readyAt;
    const afterConnectMs = doneAt === null || connectedAt === null ? null : doneAt - connectedAt;
    const ok = doneAt !== null && stored.missing === 0 && stored.duplicated === 0 && exit === 0;
    const agentCpu = cpu1.agent.agent - cpu0.agent.agent;
    const childCpu = cpu1.agent.children - cpu0.agent.children;
    console.log(
      [
        `aggregator: spawned → /readyz ${s(readyAt - aggStart)}; agent connected ${connectedAt === null ? "never" : `${s(connectedAt - readyAt)} after /readyz`}`,
        `drain, /readyz → PostgreSQL holds all ${total}: ${drainMs === null ? `not within ${s(DRAIN_DEADLINE_MS)}` : `${s(drainMs)} = ${Math.round(total / (drainMs / 1000))} results/s`}  (goal ≤ ${s(GOAL_DRAIN_MS)})`,
        `drain, agent connected → all stored: ${afterConnectMs === null ? "-" : s(afterConnectMs)}`,
        `  drain / baseline read: ${drainMs === null ? "-" : `${(drainMs / baselineMs).toFixed(1)}×`}`,
        `stored: seqs 1..${total}: ${stored.rows} rows, ${stored.distinct} distinct; missing ${stored.missing}, duplicated ${stored.duplicated}; ` +
          `quarantined ${stored.quarantined}; ${stored.later} later results from the agent's probes`,
        `agent peak RSS (VmHWM): ${mb(mem.agentPeak)}  (before the aggregator started: ${mb(before.agentPeak)}; goal ≤ ${mb(GOAL_RSS_BYTES)})`,
        `  with its smbclients, sampled every 200 ms (${mem.samplesWithChildren} of ${mem.samples} samples found any): ` +
          `VmRSS summed ${mb(mem.totalPeak)} (smbclients alone ${mb(mem.childrenPeak)}; shared libraries counted in each), ` +
          `VmHWM + highest smbclient sum ${mb(mem.agentPeak + mem.childrenPeak)}`,
        `CPU during the drain: agent ${s(agentCpu)}, its smbclients (reaped) ${s(childCpu)}, ` +
          `aggregator ${s(cpu1.server.aggregator - cpu0.server.aggregator)}, PostgreSQL ${s(cpu1.server.postgres - cpu0.server.postgres)}`,
        `agent exit on SIGTERM: ${exit}; warnings and errors logged by the agent: ${summarize(readLogFile(agent.logFile))}`,
        `  by the aggregator: ${summarize(side.logs())}`,
        ok ? "OK: every result stored exactly once" : "FAILED: see above",
      ].join("\n"),
    );
    return {
      drainMs,
      afterConnectMs,
      baselineMs,
      agentPeak: mem.agentPeak,
      rssWithChildren: mem.totalPeak,
      rssBeforeAggregator: before.agentPeak,
      ok,
    };
  } finally {
    await agent.stop();
    await side.close();
  }
}

const run = startRun(
  "bench:drain",
  ["postgres", "smbclient", ...(probeKind === "samba" ? (["smbd"] as const) : [])],
  [
    { name: "--results", value: total, default: DEFAULTS.results },
    { name: "--runs", value: runs, default: DEFAULTS.runs },
    { name: "--targets", value: targets, default: DEFAULTS.targets },
    { name: "--interval", value: interval, default: DEFAULTS.interval },
    { name: "--probes", value: probeKind, default: DEFAULTS.probes },
  ],
);
console.log(`agent V8 flags (bin/smbfleet): ${agentNodeFlags().join(" ")}`);
const root = mkdtempSync(join(tmpdir(), "smbfleet-bench-drain-"));
let samba: SambaServer | null = null;
let pg: RunningPostgres | null = null;
const verdicts = new Verdicts();
try {
  const template = join(root, "template.db");
  const filled = fillBuffer(template, total);
  for (const extra of ["-wal", "-shm"]) {
    if (existsSync(template + extra))
      throw new Error(`${template}${extra} left after close: the copy would miss it`);
  }
  console.log(
    `fill (once, copied for each run): ${total} results (${mb(filled.protobufBytes)} protobuf, file ${mb(filled.fileBytes)}) ` +
      `in ${s(filled.ms)} = ${Math.round(total / (filled.ms / 1000))} results/s (appendMany)`,
  );
  let probes: ProbeTargets;
  if (probeKind === "samba") {
    samba = await startSamba();
    for (let i = 0; i < targets; i++) {
      const d = join(samba.sharePaths.writable, `t${i}`);
      mkdirSync(d);
      chmodSync(d, 0o777);
    }
    const user = samba.users[0]!;
    probes = {
      kind: "samba",
      host: samba.host,
      port: samba.port,
      workgroup: samba.workgroup,
      share: samba.shares.writable,
      user: user.name,
      password: user.password,
    };
  } else {
    probes = { kind: "unreachable", port: await freePort() };
  }
  console.log(
    `probes: ${targets} targets every ${interval} s on ` +
      (probes.kind === "samba"
        ? `a real Samba (test/harness, ${probes.host}:${probes.port})`
        : `a closed loopback port (127.0.0.1:${probes.port}): every run fails as unreachable`),
  );
  pg = await startPostgres({ fsync: true });
  const pki = await createFleetPki(join(root, "pki"));
  console.log(
    "receiver: smbfleet aggregator (own process, default config, mTLS, ack after commit; per-agent limit " +
      `${AGGREGATOR_DEFAULTS.maxResultsPerSecondPerAgent} results/s), fresh database per run, PostgreSQL fsync on`,
  );
  const figures: RunFigures[] = [];
  for (let n = 1; n <= runs; n++) {
    figures.push(await oneRun(n, { pg, pki, root, template, protobufBytes: filled.protobufBytes }, probes));
  }
  figures.forEach((f, i) => {
    verdicts.add({
      figure: `run ${i + 1}: drain ${total} (/readyz → all stored)`,
      value: f.drainMs === null ? "did not finish" : s(f.drainMs),
      baseline: `read alone ${s(f.baselineMs)}`,
      ratio: f.drainMs === null ? "-" : `${(f.drainMs / f.baselineMs).toFixed(1)}×`,
      goal: `≤ ${s(GOAL_DRAIN_MS)}, exactly once`,
      holds: f.ok && f.drainMs !== null && f.drainMs <= GOAL_DRAIN_MS,
    });
    verdicts.add({
      figure: `run ${i + 1}: agent peak RSS (VmHWM)`,
      value: mb(f.agentPeak),
      baseline: `before aggregator ${mb(f.rssBeforeAggregator)}`,
      ratio: (f.agentPeak / f.rssBeforeAggregator).toFixed(2),
      goal: `≤ ${mb(GOAL_RSS_BYTES)}`,
      holds: f.agentPeak <= GOAL_RSS_BYTES,
    });
    verdicts.add({
      figure: `run ${i + 1}: agent + smbclients, sampled VmRSS sum`,
      value: mb(f.rssWithChildren),
      baseline: `before aggregator ${mb(f.rssBeforeAggregator)}`,
      ratio: (f.rssWithChildren / f.rssBeforeAggregator).toFixed(2),
      goal: `≤ ${mb(GOAL_RSS_BYTES)}`,
      holds: f.rssWithChildren <= GOAL_RSS_BYTES,
    });
  });
  verdicts.print();
  const drainHeld = figures.filter((f) => f.ok && f.drainMs !== null && f.drainMs <= GOAL_DRAIN_MS).length;
  const held = (f: (r: RunFigures) => number): number => figures.filter((r) => f(r) <= GOAL_RSS_BYTES).length;
  console.log(
    `drain ≤ 30 s with every result exactly once in ${drainHeld} of ${runs} runs; peak ≤ 150 MB: ` +
      `agent process (VmHWM) in ${held((r) => r.agentPeak)}, agent + smbclients (VmRSS) in ${held((r) => r.rssWithChildren)} ` +
      `of ${runs} runs`,
  );
  if (!figures.every((f) => f.ok)) process.exitCode = 1;
} finally {
  await pg?.stop();
  await samba?.stop();
  rmSync(root, { recursive: true, force: true });
  run.end();
}
