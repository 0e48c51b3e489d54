// `make demo`: a standalone smbfleet agent against a Samba server the demo
// starts itself on loopback. Two targets in smbprobe's config format: the
// writable share (healthy) and the read-only one (UNHEALTHY: writes are
// denied), so both outcomes are on screen. Prints a summary read from the
// agent's /metrics, then runs until Ctrl-C and stops everything it started.
// DEMO_ONCE=1 exits after the summary (the end-to-end test uses it).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSamba, type SambaServer } from "../test/harness/samba.ts";
import { AgentStartError, startAgentProcess, type AgentProcess } from "./agent-process.ts";
import { writeDemoConfig } from "./demo-config.ts";
import { histogramMedian, parseMetrics, select, type Sample } from "./prom-text.ts";

/** Short, so the first results arrive within seconds; a real site would use 60. */
const DEMO_INTERVAL_SECONDS = 5;
/** The first run of each target lands within one interval; this allows a slow, busy machine. */
const FIRST_RESULTS_TIMEOUT_MS = 60_000;
const PREFERRED_LISTEN = "127.0.0.1:9741";
const OPERATIONS = ["login", "write", "ls_dir", "read", "integrity", "unlink"];

interface TargetSummary {
  name: string;
  share: string;
  healthy: boolean;
  failureClasses: string[];
  ops: Array<{ op: string; count: number; medianMs: number | null; meanMs: number | null; failed: number }>;
}

async function main(): Promise<number> {
  const once = process.env["DEMO_ONCE"] === "1";
  const stop = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => stop.abort());

  let samba: SambaServer | null = null;
  let agent: AgentProcess | null = null;
  const dir = mkdtempSync(join(tmpdir(), "smbfleet-demo-"));
  try {
    log("starting Samba on loopback ...");
    samba = await startSamba();
    log(`Samba listening on ${samba.host}:${samba.port} (shares: writable, readonly)`);
    const targets = [
      { name: "demo-writable", share: samba.shares.writable, interval: DEMO_INTERVAL_SECONDS },
      { name: "demo-readonly", share: samba.shares.readonly, interval: DEMO_INTERVAL_SECONDS },
    ];
    const listen = process.env["DEMO_HTTP_LISTEN"] ?? (once ? "127.0.0.1:0" : PREFERRED_LISTEN);
    const config = writeDemoConfig(samba, dir, { targets, httpListen: listen });
    log(`config: ${config} (smbprobe format, password in ${join(dir, ".secrets.toml")})`);
    try {
      agent = await startAgentProcess(config);
    } catch (err) {
      // 9741 may be taken (a real agent on this machine): any free port will do.
      if (!(err instanceof AgentStartError) || !err.output.includes("EADDRINUSE")) throw err;
      log(`${listen} is in use; using a free port instead`);
      agent = await startAgentProcess(writeDemoConfig(samba, dir, { targets, httpListen: "127.0.0.1:0" }));
    }
    log(`agent running (pid ${agent.pid}); waiting for the first results ...`);

    const summaries = await waitForResults(
      agent,
      targets.map((t) => t.share),
      stop.signal,
    );
    if (summaries === null) {
      log(stop.signal.aborted ? "interrupted" : "no results in time; agent output follows");
      if (!stop.signal.aborted) for (const l of agent.logs.slice(-20)) log(JSON.stringify(l));
      return 1;
    }
    process.stdout.write(formatSummary(summaries, agent.url));
    // The demo shows one healthy and one unhealthy target; anything else means it is broken.
    const asExpected =
      summaries.find((s) => s.share === "writable")?.healthy === true &&
      summaries.find((s) => s.share === "readonly")?.healthy === false;
    if (!asExpected) log("unexpected: the writable share should be healthy and the read-only one not");
    if (once) return asExpected ? 0 : 1;

    log("running; press Ctrl-C to stop");
    await new Promise<void>((resolve) => {
      stop.signal.addEventListener("abort", () => resolve(), { once: true });
      void agent!.exited.then(() => resolve());
    });
    return asExpected ? 0 : 1;
  } finally {
    if (agent !== null) {
      const code = await agent.stop().catch((err: unknown) => (log(String(err)), 1));
      log(`agent stopped (exit ${code})`);
    }
    if (samba !== null) await samba.stop();
    rmSync(dir, { recursive: true, force: true });
    log("Samba stopped, temp files removed");
  }
}

async function waitForResults(
  agent: AgentProcess,
  shares: string[],
  signal: AbortSignal,
): Promise<TargetSummary[] | null> {
  const deadline = Date.now() + FIRST_RESULTS_TIMEOUT_MS;
  while (Date.now() < deadline && !signal.aborted && agent.child.exitCode === null) {
    try {
      const samples = parseMetrics(await (await fetch(`${agent.url}/metrics`)).text());
      const summaries = shares.map((share) => summarise(samples, share));
      if (summaries.every((s): s is TargetSummary => s !== null)) return summaries;
    } catch {
      // Not listening yet or restarting: try again.
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return null;
}

function summarise(samples: Sample[], share: string): TargetSummary | null {
  const state = select(samples, "smb_service_state", { share })[0];
  if (state === undefined) return null;
  const ops = OPERATIONS.map((op) => {
    const labels = { share, operation: op };
    const count = select(samples, "smb_operation_latency_seconds_count", labels)[0]?.value ?? 0;
    const sum = select(samples, "smb_operation_latency_seconds_sum", labels)[0]?.value ?? 0;
    const median = histogramMedian(samples, "smb_operation_latency_seconds", labels);
    return {
      op,
      count,
      medianMs: median === null ? null : median * 1000,
      meanMs: count === 0 ? null : (sum / count) * 1000,
      failed: select(samples, "smb_operation_failed_total", labels)[0]?.value ?? 0,
    };
  }).filter((o) => o.count > 0 || o.failed > 0);
  const failureClasses = select(samples, "smbfleet_agent_runs_total", { share, result: "unhealthy" })
    .filter((s) => s.value > 0)
    .map((s) => s.labels["failure_class"]!);
  return { name: share, share, healthy: state.value === 0, failureClasses, ops };
}

function formatSummary(summaries: TargetSummary[], url: string): string {
  const ms = (v: number | null): string => (v === null ? "-" : v.toFixed(2));
  const lines = ["", "smbfleet demo: first results", ""];
  for (const s of summaries) {
    const status = s.healthy ? "healthy" : `UNHEALTHY (${s.failureClasses.join(", ") || "latency"})`;
    lines.push(`  //${s.share}: ${status}`);
    lines.push(
      `    ${"op".padEnd(10)}${"samples".padStart(8)}${"~median ms".padStart(12)}${"mean ms".padStart(10)}${"failed".padStart(8)}`,
    );
    for (const o of s.ops) {
      lines.push(
        `    ${o.op.padEnd(10)}${String(o.count).padStart(8)}${ms(o.medianMs).padStart(12)}${ms(o.meanMs).padStart(10)}${String(o.failed).padStart(8)}`,
      );
    }
    lines.push("");
  }
  lines.push("  (~median is estimated from the histogram buckets, as Prometheus's histogram_quantile does)");
  lines.push(`  metrics: ${url}/metrics   health: ${url}/healthz   ready: ${url}/readyz`, "");
  return lines.join("\n");
}

function log(message: string): void {
  process.stderr.write(`demo: ${message}\n`);
}

process.exitCode = await main();
