// DEMO_MODE=standalone: one smbfleet agent without an aggregator (still a
// valid deployment: a site-local Prometheus scrapes it) against a Samba the
// demo starts on loopback. Two targets in smbprobe's config format: the
// writable share (healthy) and the read-only one (UNHEALTHY: writes are
// denied). The summary is read from the agent's own /metrics.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSamba, type SambaServer } from "../test/harness/samba.ts";
import { AgentStartError, startAgentProcess, type AgentProcess } from "./agent-process.ts";
import {
  DEMO_INTERVAL_SECONDS,
  FIRST_RESULTS_TIMEOUT_MS,
  demoChildEnv,
  writeDemoConfig,
} from "./demo-config.ts";
import {
  MEDIAN_NOTE,
  formatTarget,
  log,
  pause,
  summariseTarget,
  type TargetSummary,
} from "./demo-summary.ts";
import { parseMetrics, select, type Sample } from "./prom-text.ts";

/** The agent's default port, so the URL is the one an operator will see in production. */
const PREFERRED_LISTEN = "127.0.0.1:9741";
/** /metrics is polled this often while waiting for the first results. */
const POLL_MS = 250;

export interface DemoOptions {
  /** Exit after the summary instead of running until the signal. */
  once: boolean;
  signal: AbortSignal;
  /** A second Ctrl-C: kill the smbfleet processes instead of draining them. */
  force: AbortSignal;
  env: NodeJS.ProcessEnv;
}

export async function runStandaloneDemo(o: DemoOptions): Promise<number> {
  let samba: SambaServer | null = null;
  let agent: AgentProcess | null = null;
  const dir = mkdtempSync(join(tmpdir(), "smbfleet-demo-"));
  const onForce = (): void => void agent?.child.kill("SIGKILL");
  o.force.addEventListener("abort", onForce, { once: true });
  try {
    log("starting Samba on loopback ...");
    samba = await startSamba();
    log(`Samba listening on ${samba.host}:${samba.port} (shares: writable, readonly; in ${samba.dir})`);
    const targets = [
      { name: "demo-writable", share: samba.shares.writable, interval: DEMO_INTERVAL_SECONDS },
      { name: "demo-readonly", share: samba.shares.readonly, interval: DEMO_INTERVAL_SECONDS },
    ];
    const listen = o.env["DEMO_HTTP_LISTEN"] ?? (o.once ? "127.0.0.1:0" : PREFERRED_LISTEN);
    const env = demoChildEnv(o.env);
    const config = writeDemoConfig(samba, dir, { targets, httpListen: listen });
    log(`config: ${config} (smbprobe format, password in ${join(dir, ".secrets.toml")})`);
    // Own process group: Ctrl-C reaches only the demo, which then stops the agent once, in order.
    try {
      agent = await startAgentProcess(config, { env, detached: true });
    } catch (err) {
      // 9741 may be taken (a real agent on this machine): any free port will do.
      if (!(err instanceof AgentStartError) || !err.output.includes("EADDRINUSE")) throw err;
      log(`${listen} is in use; using a free port instead`);
      const fallback = writeDemoConfig(samba, dir, { targets, httpListen: "127.0.0.1:0" });
      agent = await startAgentProcess(fallback, { env, detached: true });
    }
    log(`agent running (pid ${agent.pid}); waiting for the first results ...`);

    const summaries = await waitForResults(
      agent,
      targets.map((t) => t.share),
      o.signal,
    );
    if (summaries === null) {
      log(o.signal.aborted ? "interrupted" : "no results in time; agent output follows");
      if (!o.signal.aborted) for (const l of agent.logs.slice(-20)) log(JSON.stringify(l));
      return 1;
    }
    process.stdout.write(formatSummary(summaries, agent.url));
    // The demo shows one healthy and one unhealthy target; anything else means it is broken.
    const asExpected =
      summaries.find((s) => s.share === "writable")?.healthy === true &&
      summaries.find((s) => s.share === "readonly")?.healthy === false;
    if (!asExpected) log("unexpected: the writable share should be healthy and the read-only one not");
    if (o.once) return asExpected ? 0 : 1;

    log("running; press Ctrl-C to stop");
    const running = agent;
    await new Promise<void>((resolve) => {
      o.signal.addEventListener("abort", () => resolve(), { once: true });
      void running.exited.then(() => resolve());
    });
    return asExpected ? 0 : 1;
  } finally {
    if (agent !== null) {
      const code = await agent.stop().catch((err: unknown) => (log(String(err)), 1));
      log(`agent stopped (exit ${code})`);
    }
    if (samba !== null) await samba.stop();
    o.force.removeEventListener("abort", onForce);
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
      const summaries = shares.map((share) => withFailureClasses(samples, share));
      if (summaries.every((s): s is TargetSummary => s !== null)) return summaries;
    } catch {
      // Not listening yet or restarting: try again.
    }
    await pause(POLL_MS, signal);
  }
  return null;
}

/** The agent counts unhealthy runs by failure class; the aggregator's /metrics does not. */
function withFailureClasses(samples: Sample[], share: string): TargetSummary | null {
  const summary = summariseTarget(samples, { share });
  if (summary === null) return null;
  summary.failureClasses = select(samples, "smbfleet_agent_runs_total", { share, result: "unhealthy" })
    .filter((s) => s.value > 0)
    .map((s) => s.labels["failure_class"]!);
  return summary;
}

function formatSummary(summaries: TargetSummary[], url: string): string {
  const lines = ["", "smbfleet demo (standalone agent): first results", ""];
  for (const s of summaries) lines.push(...formatTarget(s, 2), "");
  lines.push(`  ${MEDIAN_NOTE}`);
  lines.push(`  metrics: ${url}/metrics   health: ${url}/healthz   ready: ${url}/readyz`, "");
  return lines.join("\n");
}
