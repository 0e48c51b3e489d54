// npm run bench:ingest — issue 3, acceptance 4: end-to-end ingest results/s
// and, in the same run against the same PostgreSQL, the raw COPY ceiling.
//
//   end-to-end: `smbfleet aggregator` as its own process (mTLS, real config),
//     AGENTS simulated agents in this process, each with its own certificate
//     and stream, sending batches of BATCH results with WINDOW batches in
//     flight; counted when acked (= committed). Aggregator CPU from /proc.
//   ceiling: postgres.js `COPY results FROM STDIN` of the same rows (same
//     columns, same JSON, same partitions and indexes: a second database with
//     the same migrations) over AGENTS connections, BATCH rows per COPY, and
//     once more with large COPYs; the higher figure is the ceiling.
// Prints both and the ratio (goal ≥ 0.5). Bounded: RESULTS per agent, and
// every phase has a deadline.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { Client } from "@grpc/grpc-js";
import { closeDatabase, connectDatabase } from "../../aggregator/db/connect.ts";
import { migrate } from "../../aggregator/db/migrate.ts";
import { Secret } from "../../shared/secret.ts";
import { clientCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles } from "../../shared/tls/files.ts";
import { initCa, issueAgent, issueServer } from "../../shared/tls/pki.ts";
import { startPostgres } from "../../test/harness/postgres.ts";
import { TestStream } from "../../test/ingest/fixture.ts";
import { SimAgent } from "../../test/ingest/sim-agent.ts";
import { copyCeiling } from "./copy-ceiling.ts";
import { cpuSeconds, postmasterPid, treeCpuSeconds } from "./process-cpu.ts";

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const AGENTS = env("BENCH_AGENTS", 4);
const BATCH = env("BENCH_BATCH", 500);
const WINDOW = env("BENCH_WINDOW", 8); // the agent sender's default (agent/pusher/options.ts)
const RESULTS = env("BENCH_RESULTS", 100_000); // per agent
const TARGETS = 10;
const DEADLINE_MS = 180_000;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** This process's CPU seconds: the simulated agents' side. */
function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const dir = mkdtempSync(join(tmpdir(), "smbfleet-bench-ingest-"));
const pg = await startPostgres({ fsync: true });
const pgPid = postmasterPid(join(pg.dir, "data"));
console.log(
  `machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
    `node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
);
console.log(
  `PostgreSQL 15, fsync on; ${AGENTS} agents × ${RESULTS} results, batches of ${BATCH}, window ${WINDOW}`,
);

try {
  // --- end to end -----------------------------------------------------------
  const e2eUrl = await pg.createDatabase("bench_e2e");
  await initCa(dir);
  const server = await issueServer(dir, { dns: ["localhost"], ip: ["127.0.0.1"] });
  const config = join(dir, "aggregator.toml");
  writeFileSync(
    config,
    `[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[tls]
ca = "${server.ca}"
cert = "${server.cert}"
key = "${server.key}"
[database]
url = "${e2eUrl}"
pool_size = ${AGENTS + 2}
[ingest]
max_results_per_second_per_agent = 10000000
`,
  );
  // BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the aggregator.
  const nodeArgs = (process.env["BENCH_NODE_ARGS"] ?? "").split(" ").filter((a) => a !== "");
  const child = spawn(process.execPath, [...nodeArgs, MAIN, "aggregator", "--config", config], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const grpcPort = await new Promise<number>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error("aggregator did not start")), 60_000);
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
  const creds = await Promise.all(
    Array.from({ length: AGENTS }, async (_, i) => {
      const files = await issueAgent(dir, { site: "bench", agent: `bench-${i + 1}` });
      return clientCredentials(await loadTlsFiles(files));
    }),
  );
  const clients: Client[] = [];
  const latencies: number[] = [];
  const agents = creds.map(
    (c, i) =>
      new SimAgent({
        site: "bench",
        agent: `bench-${i + 1}`,
        total: RESULTS,
        batchSize: BATCH,
        window: WINDOW,
        targets: TARGETS,
        deadlineMs: DEADLINE_MS,
        onAck: (_seq, ms) => latencies.push(ms),
        open: () => {
          const client = new Client(`127.0.0.1:${grpcPort}`, c, {
            "grpc.ssl_target_name_override": "localhost",
          });
          clients.push(client);
          return Promise.resolve(new TestStream(client));
        },
      }),
  );
  const cpu0 = cpuSeconds(child.pid!);
  const pgCpu0 = treeCpuSeconds(pgPid);
  const selfCpu0 = selfCpuSeconds();
  const t0 = performance.now();
  await Promise.all(agents.map((a) => a.run()));
  const e2eSeconds = (performance.now() - t0) / 1000;
  const aggregatorCpu = cpuSeconds(child.pid!) - cpu0;
  const pgCpu = treeCpuSeconds(pgPid) - pgCpu0;
  const selfCpu = selfCpuSeconds() - selfCpu0;
  for (const c of clients) c.close();
  const total = AGENTS * RESULTS;
  const e2eRate = total / e2eSeconds;
  child.kill("SIGTERM");
  const code = await exited;

  const check = connectDatabase({ url: new Secret(e2eUrl), poolSize: 1 });
  const rows = await check`SELECT count(*)::int AS n, count(DISTINCT (agent_id, seq))::int AS d FROM results`;
  await closeDatabase(check);
  latencies.sort((a, b) => a - b);
  console.log(
    `end-to-end: ${total} results in ${e2eSeconds.toFixed(2)} s = ${Math.round(e2eRate)} results/s ` +
      `(stored ${String(rows[0]?.["n"])}, distinct ${String(rows[0]?.["d"])}, reconnects ${agents.reduce((s, a) => s + a.reconnects, 0)})`,
  );
  console.log(
    `  ack latency per batch: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms; ` +
      `exit ${code}`,
  );
  const us = (cpu: number): string => `${cpu.toFixed(1)} s = ${((cpu / total) * 1e6).toFixed(1)} µs/result`;
  console.log(
    `  CPU: aggregator ${us(aggregatorCpu)}, PostgreSQL ${us(pgCpu)}, simulated agents ${us(selfCpu)} ` +
      `(${((aggregatorCpu + pgCpu + selfCpu) / e2eSeconds).toFixed(2)} of ${cpus().length} cores busy)`,
  );

  // --- raw COPY ceiling -------------------------------------------------------
  const copyUrl = await pg.createDatabase("bench_copy");
  const sql = connectDatabase({ url: new Secret(copyUrl), poolSize: AGENTS });
  await migrate(sql);
  const pgCopy0 = treeCpuSeconds(pgPid);
  const same = await copyCeiling(sql, { connections: AGENTS, rowsPerCopy: BATCH, total, targets: TARGETS });
  const pgCopyCpu = treeCpuSeconds(pgPid) - pgCopy0;
  await sql`TRUNCATE results`;
  const pgLarge0 = treeCpuSeconds(pgPid);
  const large = await copyCeiling(sql, { connections: 2, rowsPerCopy: 10_000, total, targets: TARGETS });
  const pgLargeCpu = treeCpuSeconds(pgPid) - pgLarge0;
  await closeDatabase(sql);
  const ceiling = Math.max(same, large);
  console.log(
    `raw COPY: ${Math.round(same)} rows/s (${AGENTS} connections × ${BATCH}-row COPYs), ` +
      `${Math.round(large)} rows/s (2 × 10000-row COPYs); ceiling ${Math.round(ceiling)} rows/s`,
  );
  console.log(
    `  PostgreSQL CPU per row: ${((pgCopyCpu / total) * 1e6).toFixed(1)} µs (${AGENTS} × ${BATCH}-row COPYs), ` +
      `${((pgLargeCpu / total) * 1e6).toFixed(1)} µs (2 × 10000-row COPYs)`,
  );
  console.log(`ratio end-to-end / ceiling: ${(e2eRate / ceiling).toFixed(2)} (goal ≥ 0.5)`);
} finally {
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
}
