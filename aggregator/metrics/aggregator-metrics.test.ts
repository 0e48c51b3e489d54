// Golden test of the aggregator's /metrics: names, types, label names and
// order. Regenerate after an intended change with UPDATE_GOLDEN=1.
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AggregatorMetrics, type ResultForMetrics } from "./aggregator-metrics.ts";

const GOLDEN = new URL("./testdata/metrics.golden.txt", import.meta.url);

function result(over: Partial<ResultForMetrics> = {}): ResultForMetrics {
  return {
    targetId: 1n,
    target: { address: "10.0.0.5", share: "finance", domain: "CORP" },
    startedAtMs: 1_000,
    healthy: true,
    operations: [
      { operation: "login", samplesMs: [1.5], failures: 0 },
      { operation: "write", samplesMs: [0.4, 3], failures: 1 },
    ],
    aboveThreshold: [],
    ...over,
  };
}

describe("AggregatorMetrics", () => {
  it("matches the golden exposition", async () => {
    const m = new AggregatorMetrics({ processMetrics: false });
    m.recordResults("paris", "paris-01", [
      result(),
      result({ startedAtMs: 2_000, healthy: false, aboveThreshold: ["write"] }),
    ]);
    m.agentsConnected.inc({ site: "paris" });
    m.agentLastSeen.set({ site: "paris", agent: "paris-01" }, 1_700_000_000);
    m.agentBacklog.set({ site: "paris", agent: "paris-01" }, 12);
    m.agentDropped.set({ site: "paris", agent: "paris-01" }, 0);
    m.agentClockSkew.set({ site: "paris", agent: "paris-01" }, -0.25);
    m.ingestResults.inc({ site: "paris", outcome: "stored" }, 2);
    m.batchLatency.observe(0.004);
    m.batchSize.observe(2);
    m.rejects.inc({ code: "INVALID_ARGUMENT" });
    m.streamsRefused.inc({ code: "PERMISSION_DENIED", reason: "revoked" });
    const text = await m.registry.metrics();
    if (process.env["UPDATE_GOLDEN"] === "1") writeFileSync(GOLDEN, text);
    expect(text).toBe(readFileSync(GOLDEN, "utf8"));
  });

  it("keeps the newest run's state when an older result is replayed late", async () => {
    const m = new AggregatorMetrics({ processMetrics: false });
    m.recordResults("paris", "paris-01", [result({ startedAtMs: 5_000, healthy: false })]);
    m.recordResults("paris", "paris-01", [result({ startedAtMs: 1_000, healthy: true })]);
    const text = await m.registry.metrics();
    expect(text).toContain(
      'smb_service_state{address="10.0.0.5",share="finance",domain="CORP",site="paris",agent="paris-01"} 1',
    );
    // ...while its samples and failures still count.
    expect(text).toContain(
      'smb_operation_latency_seconds_count{address="10.0.0.5",share="finance",domain="CORP",operation="write",site="paris",agent="paris-01"} 4',
    );
  });

  it("counts a failed login once per run, as the agent does", async () => {
    const m = new AggregatorMetrics({ processMetrics: false });
    m.recordResults("paris", "paris-01", [
      result({ operations: [{ operation: "login", samplesMs: [], failures: 3 }] }),
    ]);
    expect(await m.registry.metrics()).toContain(
      'smb_operation_failed_total{address="10.0.0.5",share="finance",domain="CORP",operation="login",site="paris",agent="paris-01"} 1',
    );
  });
});
