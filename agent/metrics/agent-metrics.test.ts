import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Registry } from "prom-client";
import { fakeResult, fakeTarget } from "../scheduler/testing.ts";
import { createAgentMetrics } from "./agent-metrics.ts";
import { recordResult, schedulerObserver } from "./record-result.ts";

const GOLDEN = fileURLToPath(new URL("../../test/fixtures/metrics/agent.golden", import.meta.url));

/** Names, types, help and label names: what dashboards and alerts depend on. */
async function describeRegistry(registry: Registry): Promise<string> {
  const metrics = await registry.getMetricsAsJSON();
  return metrics
    .map((m) => {
      const labels = new Set<string>();
      for (const v of m.values) for (const k of Object.keys(v.labels)) if (k !== "le") labels.add(k);
      return `${m.name} ${m.type} {${[...labels].sort().join(",")}}\n  ${m.help}\n`;
    })
    .sort()
    .join("");
}

function fedMetrics() {
  const metrics = createAgentMetrics({ site: "paris", agentId: "paris-01", version: "0.1.0" });
  const finance = fakeTarget({ name: "finance", address: "10.0.0.5", share: "finance", domain: "CORP" });
  const archive = fakeTarget({ name: "archive", address: "10.0.0.6", share: "archive", domain: "CORP" });
  recordResult(metrics, fakeResult(finance, { durationMs: 31 }));
  recordResult(
    metrics,
    fakeResult(archive, {
      healthy: false,
      failureClass: "access_denied",
      failureMessage: "NT_STATUS_ACCESS_DENIED opening remote file",
      aboveThreshold: ["login"],
      operations: [
        { operation: "login", samplesMs: [2500], failures: 3 },
        { operation: "write", samplesMs: [], failures: 5 },
        { operation: "ls_dir", samplesMs: [1.4], failures: 0 },
      ],
    }),
  );
  const observer = schedulerObserver(metrics);
  observer.runStarted!(finance, 12);
  observer.runsMissed!(archive, 2);
  observer.inFlightChanged!(3);
  metrics.buffer.setBacklog(7, 4096, 30);
  metrics.buffer.dropped("max_age", 2);
  metrics.aggregator.setConnected(true);
  metrics.aggregator.acked(5);
  return metrics;
}

describe("agent metrics", () => {
  it("match the golden file: names, types, help and label names", async () => {
    const actual = await describeRegistry(fedMetrics().registry);
    // After an intended change: UPDATE_GOLDEN=1 npx vitest run agent/metrics, then review the diff.
    if (process.env["UPDATE_GOLDEN"] === "1") writeFileSync(GOLDEN, actual);
    expect(existsSync(GOLDEN)).toBe(true);
    expect(actual).toBe(readFileSync(GOLDEN, "utf8"));
  });

  it("keep smbprobe's meaning and units: 1 = unhealthy, seconds, one observation per sample", async () => {
    const text = await fedMetrics().registry.metrics();
    const fin = 'address="10.0.0.5",share="finance",domain="CORP"';
    const arc = 'address="10.0.0.6",share="archive",domain="CORP"';
    expect(text).toContain(`smb_service_state{${fin},site="paris"} 0`);
    expect(text).toContain(`smb_service_state{${arc},site="paris"} 1`);
    // write samples 0.9 1.1 0.8 1.0 0.95 ms: four at or below 1 ms, all five below 1.5 ms.
    expect(text).toContain(
      `smb_operation_latency_seconds_bucket{le="0.0005",${fin},operation="write",site="paris"} 0`,
    );
    expect(text).toContain(
      `smb_operation_latency_seconds_bucket{le="0.001",${fin},operation="write",site="paris"} 4`,
    );
    expect(text).toContain(
      `smb_operation_latency_seconds_bucket{le="0.0015",${fin},operation="write",site="paris"} 5`,
    );
    expect(text).toContain(`smb_operation_latency_seconds_count{${fin},operation="write",site="paris"} 5`);
    expect(text).toMatch(
      new RegExp(`smb_operation_latency_seconds_sum\\{${fin},operation="write",site="paris"\\} 0\\.00475`),
    );
    // A failed login counts once per run; other operations count every failure.
    expect(text).toContain(`smb_operation_failed_total{${arc},operation="login",site="paris"} 1`);
    expect(text).toContain(`smb_operation_failed_total{${arc},operation="write",site="paris"} 5`);
    expect(text).toContain(`smb_operation_failed_total{${fin},operation="read",site="paris"} 0`);
    expect(text).toContain(`smb_latency_above_threshold_total{${arc},operation="login",site="paris"} 1`);
    expect(text).not.toContain(`smb_latency_above_threshold_total{${fin}`);
    expect(text).toContain(
      `smbfleet_agent_runs_total{${arc},site="paris",result="unhealthy",failure_class="access_denied"} 1`,
    );
    expect(text).toContain(
      `smbfleet_agent_runs_total{${fin},site="paris",result="healthy",failure_class="none"} 1`,
    );
    expect(text).toContain(`smbfleet_agent_missed_runs_total{${arc},site="paris"} 2`);
    expect(text).toContain(`smbfleet_agent_runs_in_flight{site="paris"} 3`);
    expect(text).toContain(`smbfleet_agent_buffer_dropped_total{site="paris",reason="max_age"} 2`);
    expect(text).toContain(`smbfleet_agent_aggregator_connected{site="paris"} 1`);
    expect(text).toContain(`smbfleet_agent_info{site="paris",agent_id="paris-01",version="0.1.0"} 1`);
  });

  it("use a registry of their own, so two agents in one process do not collide", async () => {
    const a = createAgentMetrics({ site: "a", agentId: "a1", version: "0" });
    const b = createAgentMetrics({ site: "b", agentId: "b1", version: "0", processMetrics: true });
    expect(await a.registry.metrics()).not.toContain("process_cpu");
    expect(await b.registry.metrics()).toContain("process_cpu_user_seconds_total");
  });
});
