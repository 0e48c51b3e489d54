// One end-to-end run of bench/ingest: `smbfleet aggregator` as its own
// process (mTLS, a real config) on a fresh database, and simulated agents in
// this process, each with its own certificate and stream, sending batches
// with a window in flight; a result counts when its Ack arrives (= after its
// commit). CPU of the aggregator, PostgreSQL and this process from /proc.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client, type ChannelCredentials } from "@grpc/grpc-js";
import { closeDatabase, connectDatabase } from "../../aggregator/db/connect.ts";
import { Secret } from "../../shared/secret.ts";
import type { RunningPostgres } from "../../test/harness/postgres.ts";
import { TestStream } from "../../test/ingest/fixture.ts";
import { SimAgent } from "../../test/ingest/sim-agent.ts";
import { cpuSeconds, treeCpuSeconds } from "./process-cpu.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** The aggregator starts in about a second; a loaded 2-core box may take much longer. */
const START_TIMEOUT_MS = 60_000;

export interface EndToEndOptions {
  pg: RunningPostgres;
  pgPid: number;
  dir: string;
  database: string;
  /** The aggregator's certificate files and one client credential per agent (bench-1 …). */
  server: { ca: string; cert: string; key: string };
  agents: ChannelCredentials[];
  resultsPerAgent: number;
  batch: number;
  window: number;
  targets: number;
  deadlineMs: number;
  /** Extra node arguments for the aggregator, e.g. --cpu-prof. */
  nodeArgs: string[];
}

export interface EndToEndResult {
  seconds: number;
  rate: number;
  stored: number;
  distinct: number;
  reconnects: number;
  /** Send → Ack per batch, sorted, ms. */
  latencies: number[];
  cpu: { aggregator: number; postgres: number; agents: number };
  exitCode: number | null;
}

function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export async function endToEnd(o: EndToEndOptions): Promise<EndToEndResult> {
  const url = await o.pg.createDatabase(o.database);
  const config = join(o.dir, `${o.database}.toml`);
  writeFileSync(
    config,
    `[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[tls]
ca = "${o.server.ca}"
cert = "${o.server.cert}"
key = "${o.server.key}"
[database]
url = "${url}"
pool_size = ${o.agents.length + 2}
[ingest]
max_results_per_second_per_agent = 10000000
`,
  );
  const child = spawn(process.execPath, [...o.nodeArgs, MAIN, "aggregator", "--config", config], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const clients: Client[] = [];
  try {
    const grpcPort = await new Promise<number>((resolve, reject) => {
      let buf = "";
      const timer = setTimeout(() => reject(new Error("aggregator did not start")), START_TIMEOUT_MS);
      child.stdout.on("data", (b: Buffer) => {
        buf = (buf + b.toString()).slice(-65_536);
        for (const line of buf.split("\n")) {
          if (line.includes('"aggregator started"')) {
            clearTimeout(timer);
            resolve(Number((JSON.parse(line) as { grpc: number }).grpc));
          }
        }
      });
    });
    const latencies: number[] = [];
    const agents = o.agents.map(
      (creds, i) =>
        new SimAgent({
          site: "bench",
          agent: `bench-${i + 1}`,
          total: o.resultsPerAgent,
          batchSize: o.batch,
          window: o.window,
          targets: o.targets,
          deadlineMs: o.deadlineMs,
          onAck: (_seq, ms) => latencies.push(ms),
          open: () => {
            const client = new Client(`127.0.0.1:${grpcPort}`, creds, {
              "grpc.ssl_target_name_override": "localhost",
            });
            clients.push(client);
            return Promise.resolve(new TestStream(client));
          },
        }),
    );
    const cpu0 = { a: cpuSeconds(child.pid!), p: treeCpuSeconds(o.pgPid), s: selfCpuSeconds() };
    const t0 = performance.now();
    await Promise.all(agents.map((a) => a.run()));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = {
      aggregator: cpuSeconds(child.pid!) - cpu0.a,
      postgres: treeCpuSeconds(o.pgPid) - cpu0.p,
      agents: selfCpuSeconds() - cpu0.s,
    };
    for (const c of clients) c.close();
    child.kill("SIGTERM");
    const exitCode = await exited;

    const check = connectDatabase({ url: new Secret(url), poolSize: 1 });
    const rows =
      await check`SELECT count(*)::int AS n, count(DISTINCT (agent_id, seq))::int AS d FROM results`;
    await closeDatabase(check);
    return {
      seconds,
      rate: (o.agents.length * o.resultsPerAgent) / seconds,
      stored: Number(rows[0]?.["n"]),
      distinct: Number(rows[0]?.["d"]),
      reconnects: agents.reduce((s, a) => s + a.reconnects, 0),
      latencies: latencies.sort((a, b) => a - b),
      cpu,
      exitCode,
    };
  } finally {
    for (const c of clients) c.close();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  }
}
