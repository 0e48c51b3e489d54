// Child process of bench/fleet: many simulated agents in one Node process,
// each the real sender (agent/pusher) on its own in-memory buffer, with its
// own certificate and therefore its own grpc-js channel, subchannel and TCP
// connection (also forced with grpc.use_local_subchannel_pool by the sender
// being given distinct credentials; bench/fleet/main.ts counts the sockets).
// Each agent produces one result per target per interval, the targets spread
// evenly over the interval, as the scheduler's phases would.
//
// Protocol with the parent (one JSON object per line on stdout; commands on stdin):
//   → {"type":"connected","n":N}     every second until all are connected
//   ← "start\n"                       produce for durationMs
//   → {"type":"tick",...}             every second while producing (backlog)
//   → {"type":"done",...}             after production and the drain wait
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { openBuffer, type ResultBuffer } from "../../agent/buffer/buffer.ts";
import { startShipper, type Shipper } from "../../agent/pusher/shipper.ts";
import { silentLogger } from "../../shared/logger.ts";
import { syntheticResult, syntheticTargets } from "../../test/fleet/synthetic-agent.ts";

export interface AgentsConfig {
  url: string;
  ca: string;
  agents: { site: string; agent: string; cert: string; key: string }[];
  targets: number;
  intervalMs: number;
  /** New streams opened per second while connecting (TLS handshakes and Hellos cost the aggregator). */
  connectPerSecond: number;
  durationMs: number;
  /** After production stops, how long to wait for every backlog to drain. */
  drainMs: number;
}

export interface AgentsReport {
  type: "done";
  agents: number;
  produced: number;
  /** Per agent, the last seq its buffer handed out: it produced seqs 1..n, nothing before "start". */
  producedByAgent: Record<string, number>;
  acked: number;
  /** Sum of backlogs the moment production stopped, and the most seen at any 1 s sample while producing. */
  backlogAtStop: number;
  maxBacklog: number;
  /** Sum of backlogs after the drain wait. */
  backlogAfterDrain: number;
  /** Streams opened beyond the first per agent (reconnects). */
  reconnects: number;
  rejects: number;
  /** Batches and results sent (resends included): results per batch as the aggregator saw them. */
  sentBatches: number;
  sentResults: number;
  /** accept → ack, ms, one per result acked while producing or draining. */
  latenciesMs: number[];
  cpuMs: number;
  maxRssBytes: number;
}

/** Producing timers fire at most this often per agent (100 per second per agent is plenty of resolution). */
const MIN_TICK_MS = 10;
/** In-memory buffers: the bench measures the aggregator, not the agents' disks. */
const LIMITS = { maxBytes: 1 << 30, maxAgeSeconds: 86_400 };

const configFile = process.argv[2];
if (configFile === undefined) throw new Error("usage: agents.ts CONFIG_JSON_FILE");
const config = JSON.parse(readFileSync(configFile, "utf8")) as AgentsConfig;
const send = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

interface Sim {
  agent: string;
  buffer: ResultBuffer;
  shipper: Shipper;
  /** seq → when it was accepted (performance.now()). */
  acceptedAt: Map<number, number>;
  acked: number;
}

const targets = syntheticTargets(config.targets);
const abort = new AbortController();
const latencies: number[] = [];
let measuring = false;
const sims: Sim[] = [];

for (const [i, a] of config.agents.entries()) {
  // Paced: this many streams per second.
  if (i > 0 && i % Math.max(1, Math.round(config.connectPerSecond / 10)) === 0) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const buffer = openBuffer(":memory:", LIMITS);
  const sim: Sim = {
    agent: a.agent,
    buffer,
    shipper: undefined as unknown as Shipper,
    acceptedAt: new Map(),
    acked: 0,
  };
  sim.shipper = startShipper(
    {
      buffer,
      aggregator: { url: config.url, ca: config.ca, cert: a.cert, key: a.key, insecure: false },
      site: a.site,
      agentId: a.agent,
      agentVersion: "0.0.0-bench",
      targets,
      logger: silentLogger(),
      metrics: {
        update(status) {
          if (status.ackedSeq <= sim.acked) return;
          const now = performance.now();
          for (let seq = sim.acked + 1; seq <= status.ackedSeq; seq++) {
            const at = sim.acceptedAt.get(seq);
            if (at === undefined) continue;
            sim.acceptedAt.delete(seq);
            if (measuring) latencies.push(Math.round((now - at) * 100) / 100);
          }
          sim.acked = status.ackedSeq;
        },
      },
    },
    abort.signal,
  );
  sims.push(sim);
}

const connected = (): number => sims.filter((s) => s.shipper.connected()).length;
while (connected() < sims.length) {
  send({ type: "connected", n: connected() });
  await new Promise((r) => setTimeout(r, 1_000));
}
send({ type: "connected", n: sims.length });

await new Promise<void>((resolve) => {
  const commands = createInterface({ input: process.stdin });
  commands.on("line", (line) => {
    if (line.trim() !== "start") return;
    // An open stdin would keep this process alive after the report.
    commands.close();
    process.stdin.destroy();
    resolve();
  });
});

const backlog = (): number => sims.reduce((n, s) => n + s.buffer.backlog().count, 0);
let produced = 0;
let maxBacklog = 0;
measuring = true;
// One result per target per interval, the targets' phases spread evenly over
// it. Timers fire late under load, so each fire produces what is due by the
// clock (not one per fire): the rate holds even when the event loop lags.
const tickMs = Math.max(MIN_TICK_MS, config.intervalMs / config.targets);
const perMs = config.targets / config.intervalMs;
const timers: NodeJS.Timeout[] = [];
const starters: NodeJS.Timeout[] = [];
for (const sim of sims) {
  let t = Math.floor(Math.random() * config.targets);
  let done = 0;
  const phase = Math.random() * tickMs;
  const begin = performance.now() + phase;
  const fire = (): void => {
    const due = Math.floor((performance.now() - begin) * perMs) + 1;
    for (; done < due; done++) {
      const target = targets[t++ % targets.length]!;
      sim.shipper.accept(syntheticResult(target, Date.now(), ""));
      sim.acceptedAt.set(sim.buffer.lastSeq(), performance.now());
      produced++;
    }
  };
  starters.push(
    setTimeout(() => {
      fire();
      timers.push(setInterval(fire, tickMs));
    }, phase),
  );
}
const sampler = setInterval(() => {
  const b = backlog();
  maxBacklog = Math.max(maxBacklog, b);
  send({ type: "tick", backlog: b, produced });
}, 1_000);
await new Promise((r) => setTimeout(r, config.durationMs));
for (const t of [...starters, ...timers]) clearTimeout(t);
clearInterval(sampler);
const backlogAtStop = backlog();
const drainUntil = Date.now() + config.drainMs;
while (backlog() > 0 && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 100));
measuring = false;

const statuses = sims.map((s) => s.shipper.status());
const cpu = process.cpuUsage();
const report: AgentsReport = {
  type: "done",
  agents: sims.length,
  produced,
  producedByAgent: Object.fromEntries(sims.map((s) => [s.agent, s.buffer.lastSeq()])),
  acked: statuses.reduce((n, s) => n + s.ackedResults, 0),
  backlogAtStop,
  maxBacklog,
  backlogAfterDrain: backlog(),
  reconnects: statuses.reduce((n, s) => n + Math.max(0, s.connects - 1), 0),
  rejects: statuses.reduce((n, s) => n + s.rejects, 0),
  sentBatches: statuses.reduce((n, s) => n + s.sentBatches, 0),
  sentResults: statuses.reduce((n, s) => n + s.sentResults, 0),
  latenciesMs: latencies,
  cpuMs: (cpu.user + cpu.system) / 1000,
  maxRssBytes: process.resourceUsage().maxRSS * 1024,
};
send(report);
abort.abort();
await Promise.all(sims.map((s) => s.shipper.stop()));
for (const s of sims) s.buffer.close();
