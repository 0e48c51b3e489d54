// bench/drain: how long a full agent buffer takes to reach PostgreSQL after
// the agent connects, and the agent's peak RSS meanwhile (goals: 1,000,000
// results in ≤ 30 s, ≤ 150 MB). The buffer is filled first (appendMany); the
// baseline is reading the same rows from SQLite without sending them. The
// agent runs as its own process (bench/drain/agent.ts) so that its RSS is its
// own; the receiver runs in this process:
//   --receiver aggregator (default): `smbfleet aggregator` as its own process
//     with its default config, on a harness PostgreSQL (fsync on), mTLS;
//   --receiver loopback: a gRPC server that decodes and acks, no database
//     (the agent's side alone).
//
//   npm run bench:drain [-- --results N --receiver loopback --agent-node-flags="..." (none: V8 defaults)]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_SHIPPER_OPTIONS, type ShipperOptions } from "../../agent/pusher/options.ts";
import { agentNodeFlags } from "../../shared/launcher.ts";
import { serverCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles } from "../../shared/tls/files.ts";
import { createFleetPki } from "../../test/harness/fleet.ts";
import { startAggregatorReceiver } from "./aggregator-receiver.ts";
import type { AgentReport } from "./agent.ts";
import { fillBuffer, readAll } from "./fill.ts";
import { startLoopbackReceiver } from "./receiver.ts";

/** The agent process is killed if it has not drained by then; 10× the goal. */
const DRAIN_DEADLINE_MS = 300_000;
const AGENT_ID = "bench-01";

const { values } = parseArgs({
  options: {
    results: { type: "string", default: "1000000" },
    receiver: { type: "string", default: "aggregator" },
    // Sender options to compare against the defaults.
    "batch-results": { type: "string" },
    window: { type: "string" },
    // Node/V8 flags for the agent process only; by default the ones
    // bin/smbfleet starts `smbfleet agent` with ("none" for V8's defaults).
    "agent-node-flags": { type: "string", default: agentNodeFlags().join(" ") },
  },
});
const total = Number(values.results);
if (!Number.isInteger(total) || total < 1)
  throw new Error(`--results: a positive integer, not ${values.results}`);
if (values.receiver !== "aggregator" && values.receiver !== "loopback") {
  throw new Error(`--receiver: aggregator or loopback, not ${values.receiver}`);
}
const overrides: Partial<ShipperOptions> = {
  ...(values["batch-results"] === undefined ? {} : { maxBatchResults: Number(values["batch-results"]) }),
  ...(values.window === undefined ? {} : { window: Number(values.window) }),
};
const nodeFlags = values["agent-node-flags"].split(" ").filter((f) => f !== "" && f !== "none");

const mb = (bytes: number): number => Math.round((bytes / 1024 ** 2) * 10) / 10;
const s = (ms: number): number => Math.round(ms / 10) / 100;
const dir = mkdtempSync(join(tmpdir(), "smbfleet-bench-drain-"));
const bufferPath = join(dir, "buffer.db");

try {
  console.log(
    `machine: ${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}), ${mb(totalmem())} MB RAM, ` +
      `node ${process.version}, load ${loadavg()[0]?.toFixed(1)}, ${new Date().toISOString()}`,
  );
  const filled = fillBuffer(bufferPath, total);
  console.log(
    `fill: ${total} results (${mb(filled.protobufBytes)} MB protobuf, file ${mb(filled.fileBytes)} MB) ` +
      `in ${s(filled.ms)} s = ${Math.round(total / (filled.ms / 1000))} results/s (appendMany)`,
  );
  const baselineMs = readAll(bufferPath, total);
  console.log(`baseline: reading them back in the sender's batches, without sending: ${s(baselineMs)} s`);

  const pki = await createFleetPki(join(dir, "pki"));
  const agentFiles = await pki.agent("bench", AGENT_ID);
  const aggregator = values.receiver === "aggregator" ? await startAggregatorReceiver(dir, pki) : null;
  const loopback =
    aggregator === null
      ? await startLoopbackReceiver(
          serverCredentials(await loadTlsFiles({ ca: pki.ca, cert: pki.serverCert, key: pki.serverKey })),
          total,
        )
      : null;
  const url = aggregator?.url ?? loopback!.url;
  console.log(
    aggregator !== null
      ? `receiver: smbfleet aggregator (own process, default config, mTLS, ack after commit) on PostgreSQL 15 with fsync on; per-agent limit ${aggregator.ratePerSecond} results/s`
      : "receiver: loopback gRPC server (mTLS, full protobuf decode, ack per batch, no database)",
  );

  const args = [...nodeFlags, join(import.meta.dirname, "agent.ts"), bufferPath, url];
  args.push(
    agentFiles.ca,
    agentFiles.cert,
    agentFiles.key,
    String(DRAIN_DEADLINE_MS),
    JSON.stringify(overrides),
  );
  const receiverCpu0 = process.cpuUsage();
  const serverCpu0 = aggregator?.cpuMs() ?? { aggregator: 0, postgres: 0 };
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => (out += chunk));
  const killer = setTimeout(() => child.kill("SIGKILL"), DRAIN_DEADLINE_MS + 30_000);
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  clearTimeout(killer);
  if (code !== 0) throw new Error(`agent process exited with ${code}`);
  const loopbackCpu = process.cpuUsage(receiverCpu0);
  const serverCpu1 = aggregator?.cpuMs() ?? { aggregator: 0, postgres: 0 };
  const r = JSON.parse(out) as AgentReport;

  let arrived: string;
  let ok: boolean;
  if (aggregator !== null) {
    const c = await aggregator.count(AGENT_ID);
    arrived = `${c.rows} rows in PostgreSQL (${c.distinct} distinct seqs, ${c.minSeq}..${c.maxSeq})`;
    ok = c.rows === total && c.distinct === total && c.minSeq === 1 && c.maxSeq === total;
    await aggregator.stop();
  } else {
    arrived = `${loopback!.received()} distinct results received (${loopback!.duplicates()} resent)`;
    ok = loopback!.received() === total;
    await loopback!.stop();
  }
  ok &&= r.left === 0 && r.drainMs !== null;
  const st = r.status;
  console.log(
    [
      `agent node flags: ${nodeFlags.join(" ") || "(none)"}; sender: batch ${overrides.maxBatchResults ?? DEFAULT_SHIPPER_OPTIONS.maxBatchResults}, window ${overrides.window ?? DEFAULT_SHIPPER_OPTIONS.window}`,
      `drain: ${arrived}; ${r.left} left in the buffer; ${st.sentBatches} batches sent, ${st.rejects} refused for now and resent, ${st.connects} stream(s)`,
      `  time after connect: ${r.drainMs === null ? "did not finish" : `${s(r.drainMs)} s = ${Math.round(total / (r.drainMs / 1000))} results/s`}  (goal ≤ 30 s)`,
      `  agent start to connected: ${r.connectMs === null ? "-" : s(r.connectMs)} s`,
      `  agent peak RSS: ${Math.round(r.maxRssMb)} MB  (goal ≤ 150 MB)`,
      `  agent CPU: user ${s(r.cpuUserMs)} s, system ${s(r.cpuSystemMs)} s`,
      aggregator !== null
        ? `  CPU meanwhile: aggregator ${s(serverCpu1.aggregator - serverCpu0.aggregator)} s, PostgreSQL ${s(serverCpu1.postgres - serverCpu0.postgres)} s`
        : `  CPU meanwhile: loopback server ${s((loopbackCpu.user + loopbackCpu.system) / 1000)} s`,
      `  drain / baseline read: ${r.drainMs === null ? "-" : Math.round((r.drainMs / baselineMs) * 10) / 10}×`,
      ok ? "OK: every result arrived exactly once" : "FAILED: results missing or duplicated",
    ].join("\n"),
  );
  if (!ok) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
