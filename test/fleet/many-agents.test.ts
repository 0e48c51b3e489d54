// Many agents at once against one aggregator: each its own certificate and
// stream, each sending one small batch at a time as a real agent does, so the
// aggregator has far more batches in hand than database connections in its
// pool. bench/fleet found the batch path failing under exactly this (1,000
// streams), while the fault tests with a few busy agents passed; this keeps
// that shape in the test suite at a size a 2-core box runs in seconds.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../harness/wait.ts";
import { startFleet, type Fleet } from "./fixture.ts";
import type { SyntheticAgent } from "./synthetic-agent.ts";
import { drained, expectExactlyOnce } from "./verify.ts";

/** Well above the aggregator's default pool of 10 connections. */
const AGENTS = 150;
/** One result every 100 ms per agent: 1,500 results/s, nearly every one its own batch. */
const EVERY_MS = 100;
const TICKS = 50;

let fleet: Fleet;
beforeAll(async () => {
  fleet = await startFleet("many_agents");
});
afterAll(async () => {
  await fleet?.close();
});

describe(`${AGENTS} agents on one aggregator`, () => {
  it("stores every result of every agent exactly once", async () => {
    const agg = await fleet.startAggregator();
    const agents: SyntheticAgent[] = [];
    for (let i = 0; i < AGENTS; i++) {
      const agent = `m${String(i).padStart(3, "0")}`;
      agents.push(await fleet.startAgent({ site: `site${i % 5}`, agent, url: agg.url }));
    }
    await until("every agent connected", () => agents.every((a) => a.shipper.connected()), {
      timeoutMs: 60_000,
      pollMs: 100,
      detail: () => agents.filter((a) => !a.shipper.connected()).map((a) => a.agent),
    });
    for (const a of agents) a.startProducing(1, EVERY_MS, TICKS);
    await until(
      `every agent to produce its ${TICKS} results`,
      () => agents.every((a) => a.committed.size === TICKS),
      {
        timeoutMs: 60_000,
        pollMs: 100,
        detail: () =>
          agents.filter((a) => a.committed.size !== TICKS).map((a) => [a.agent, a.committed.size]),
      },
    );
    try {
      await Promise.all(agents.map((a) => drained(a, 60_000)));
    } catch (err) {
      // What the aggregator said about it, so a failure here explains itself.
      const warnings = agg.logs
        .filter((l) => (l.level ?? 0) >= 40)
        .map((l) => `${l.msg}: ${JSON.stringify(l["err"] ?? l["reason"] ?? "")}`);
      const counts = new Map<string, number>();
      for (const w of warnings) counts.set(w, (counts.get(w) ?? 0) + 1);
      throw new Error(`${String(err)}; aggregator warnings: ${JSON.stringify([...counts].slice(0, 10))}`, {
        cause: err,
      });
    }
    for (const a of agents) {
      expect(a.committed.size).toBe(TICKS);
      await expectExactlyOnce(fleet.sql, a);
    }
    expect(agg.logs.filter((l) => l.msg === "batch not stored")).toEqual([]);
  });
});
