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
    m.limited.inc({ limit: "max_streams_per_agent" });
    m.helloTargetsIgnored.inc({ reason: "invalid" });
    m.logLinesSuppressed.inc(3);
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

describe("AggregatorMetrics: staleness", () => {
  it("removes a target's series after staleAfterMs without a result, and brings them back on the next", async () => {
    let now = 0;
    const m = new AggregatorMetrics({ processMetrics: false, staleAfterMs: 60_000, now: () => now });
    m.recordResults("paris", "paris-01", [result()]);
    m.recordResults("paris", "paris-01", [
      result({ targetId: 2n, target: { address: "b", share: "s", domain: "" } }),
    ]);
    now = 50_000;
    m.recordResults("paris", "paris-01", [
      result({ targetId: 2n, target: { address: "b", share: "s", domain: "" } }),
    ]);
    now = 60_001;
    let text = await m.render();
    expect(text).not.toContain('address="10.0.0.5"');
    expect(text).toContain('smb_service_state{address="b"');
    expect(text).toContain("smbfleet_metrics_stale_targets_removed_total 1");
    now = 70_000;
    m.recordResults("paris", "paris-01", [result()]);
    text = await m.render();
    expect(text).toContain('smb_service_state{address="10.0.0.5"');
    // Counters start over: a Prometheus rate() sees a reset, as after a restart.
    expect(text).toContain(
      'smb_operation_failed_total{address="10.0.0.5",share="finance",domain="CORP",operation="write",site="paris",agent="paris-01"} 1',
    );
  });
});

describe("AggregatorMetrics: render budget", () => {
  /** Target series lines (smbprobe's four metrics) of `agent` in an exposition. */
  const linesOf = (text: string, agent: string) =>
    text.split("\n").filter((l) => l.startsWith("smb_") && l.includes(`agent="${agent}"`));

  it("leaves out what is over an agent's budget, counts it in the same render, and keeps other agents whole", async () => {
    const m = new AggregatorMetrics({
      processMetrics: false,
      maxRenderBytes: 10 * 1024 * 1024,
      maxRenderBytesPerAgent: 64 * 1024,
    });
    // 200 targets with long names: far more than 64 KiB of series.
    const long = (i: number) => ({ address: `${"a".repeat(200)}${i}`, share: "s".repeat(255), domain: "d" });
    m.recordResults(
      "evil",
      "evil-01",
      Array.from({ length: 200 }, (_, i) => result({ targetId: BigInt(i), target: long(i) })),
    );
    m.recordResults("paris", "paris-01", [result()]);
    const full = await m.registry.metrics(); // outside render(): everything
    const text = await m.render();
    const evilBytes = linesOf(text, "evil-01").reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    expect(evilBytes).toBeLessThanOrEqual(64 * 1024);
    expect(evilBytes).toBeGreaterThan(32 * 1024); // the budget is used, not wasted
    expect(linesOf(text, "paris-01")).toEqual(linesOf(full, "paris-01"));
    const omitted = linesOf(full, "evil-01").length - linesOf(text, "evil-01").length;
    // Series, not lines: a histogram series is 20 lines.
    const reported = /smbfleet_metrics_omitted_series\{site="evil",agent="evil-01"\} (\d+)/.exec(text);
    expect(Number(reported?.[1])).toBeGreaterThan(0);
    expect(omitted).toBeGreaterThan(0);
    expect(text).not.toContain('smbfleet_metrics_omitted_series{site="paris"');
  });

  it("bounds the whole render, and estimates no series below its real size", async () => {
    const m = new AggregatorMetrics({
      processMetrics: false,
      maxRenderBytes: 256 * 1024,
      maxRenderBytesPerAgent: 256 * 1024,
    });
    for (let a = 0; a < 20; a++) {
      m.recordResults(
        "site",
        `agent-${a}`,
        Array.from({ length: 20 }, (_, i) =>
          result({
            targetId: BigInt(i),
            // Quotes, backslashes, newlines and 3-byte characters: escaped and UTF-8-encoded.
            target: { address: `"€\\\n${i}`.repeat(20), share: "s", domain: "d" },
          }),
        ),
      );
    }
    const text = await m.render();
    const targetBytes = text
      .split("\n")
      .filter((l) => l.startsWith("smb_"))
      .reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    expect(targetBytes).toBeLessThanOrEqual(256 * 1024);
    expect(targetBytes).toBeGreaterThan(128 * 1024);
  });

  it("renders overlapping scrapes each within its own budget", async () => {
    const m = new AggregatorMetrics({ processMetrics: false, maxRenderBytesPerAgent: 16 * 1024 });
    m.recordResults(
      "evil",
      "evil-01",
      Array.from({ length: 50 }, (_, i) =>
        result({ targetId: BigInt(i), target: { address: `a${i}`, share: "s", domain: "d" } }),
      ),
    );
    const [a, b] = await Promise.all([m.render(), m.render()]);
    expect(a).toBe(b);
    expect(a).toMatch(/smbfleet_metrics_omitted_series\{site="evil",agent="evil-01"\} \d+/);
  });
});
