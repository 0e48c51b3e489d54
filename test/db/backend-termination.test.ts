// Every smbfleet backend terminated, again and again, under a real
// `smbfleet aggregator` while agents ship results and the maintenance job
// (partitions, rollup, retention: multi-statement transactions) runs every
// 100 ms. The process must never exit (same pid, /healthz answers), every
// failed maintenance step must carry a transient code and run again, and
// every result the agents produced must be stored exactly once.
//
// Bounded, and not a matter of timing: terminations go on for at least
// MIN_ROUNDS rounds and until the maintenance job has been cut
// MIN_MAINTENANCE_CUTS times, and stop with a failure after MAX_ROUNDS.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AggregatorProcess, LogLine } from "../harness/fleet.ts";
import { until } from "../harness/wait.ts";
import { LOOPBACK } from "../harness/ports.ts";
import { startFleet, type Fleet } from "../fleet/fixture.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { drained, expectExactlyOnce, progress } from "../fleet/verify.ts";

const ROUND_MS = 300;
const MIN_ROUNDS = 40;
/** 60 s of terminations at most; a healthy run needs MIN_ROUNDS. */
const MAX_ROUNDS = 200;
/** Maintenance steps that must have failed on a lost connection before we stop. */
const MIN_MAINTENANCE_CUTS = 3;
const MAINTENANCE_INTERVAL_MS = 100;
const AGENTS = ["paris-01", "berlin-01"];

let fleet: Fleet;
beforeAll(async () => {
  fleet = await startFleet("backend_termination");
});
afterAll(async () => {
  await fleet?.close();
});

async function healthz(agg: AggregatorProcess): Promise<number> {
  const res = await fetch(`http://${LOOPBACK}:${agg.httpPort}/healthz`, {
    signal: AbortSignal.timeout(5_000),
  });
  await res.arrayBuffer();
  return res.status;
}

const maintenanceFailures = (logs: readonly LogLine[]): LogLine[] =>
  logs.filter((l) => l.msg === "maintenance step failed; retrying next run");

describe("smbfleet backends terminated repeatedly", () => {
  it("never ends the aggregator, and stores every result exactly once", async () => {
    const agg = await fleet.startAggregator({
      env: { ...process.env, SMBFLEET_MAINTENANCE_INTERVAL_MS: String(MAINTENANCE_INTERVAL_MS) },
    });
    const pid = agg.pid;
    const agents = await Promise.all(
      AGENTS.map((agent) => fleet.startAgent({ site: agent.split("-")[0]!, agent, url: agg.url })),
    );
    // 100 results/s per agent, bounded (stopped below in any case).
    for (const a of agents) a.startProducing(10, 100, (MAX_ROUNDS * ROUND_MS) / 100 + 100);
    await progress(agents, 200);

    const killed = new Map<string, number>();
    let rounds = 0;
    while (rounds < MIN_ROUNDS || maintenanceFailures(agg.logs).length < MIN_MAINTENANCE_CUTS) {
      if (rounds >= MAX_ROUNDS) {
        throw new Error(
          `after ${rounds} rounds the maintenance job was cut ${maintenanceFailures(agg.logs).length} times, ` +
            `not ${MIN_MAINTENANCE_CUTS}; terminated ${JSON.stringify(Object.fromEntries(killed))}`,
        );
      }
      const rows = await fleet.sql<{ app: string; ok: boolean }[]>`
        SELECT application_name AS app, pg_terminate_backend(pid) AS ok
        FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'smbfleet%'`;
      for (const r of rows) if (r.ok) killed.set(r.app, (killed.get(r.app) ?? 0) + 1);
      rounds++;
      if (!agg.running())
        throw new Error(`the aggregator exited in round ${rounds}: ${agg.otherOutput.join("\n")}`);
      await sleep(ROUND_MS);
    }
    const rollupMarkAtLastKill = await rollupMark();

    // The job's transactions were cut, and every cut was classified as one to retry.
    const failures = maintenanceFailures(agg.logs);
    const codes = new Set(failures.map((l) => l["code"]));
    const notTransient = failures.filter(
      (l) => l["code"] !== "DB_UNAVAILABLE" && l["code"] !== "DB_COMMIT_UNKNOWN",
    );
    expect(
      notTransient.map((l) => `${String(l["step"])}: ${String(l["code"])}: ${String(l["err"])}`),
    ).toEqual([]);

    // After the terminations: maintenance commits again, ingest catches up.
    await until(
      "a rollup committed after the last termination",
      async () => (await rollupMark()) > rollupMarkAtLastKill,
      30_000,
    );
    for (const a of agents) a.stopProducing();
    await Promise.all(agents.map((a) => drained(a, 90_000)));

    expect(agg.pid).toBe(pid);
    expect(agg.running()).toBe(true);
    expect(await healthz(agg)).toBe(200);
    expect(agg.otherOutput.filter((l) => /TypeError|uncaught|unhandled/i.test(l))).toEqual([]);
    for (const a of agents) await expectExactlyOnce(fleet.sql, a);
    for (const app of [
      "smbfleet-aggregator",
      "smbfleet-aggregator-ingest",
      "smbfleet-aggregator-maintenance",
    ]) {
      expect(killed.get(app) ?? 0, `backends of ${app} terminated`).toBeGreaterThan(0);
    }
    const stored = await fleet.sql`SELECT count(*)::int AS n FROM results`;
    console.log(
      `backend termination: ${rounds} rounds, terminated ${JSON.stringify(Object.fromEntries(killed))}; ` +
        `maintenance steps cut ${failures.length} (${[...codes].join(", ")}); ` +
        `stored ${String(stored[0]?.["n"])} results, produced ${agents.reduce((n, a) => n + a.committed.size, 0)}`,
    );
  });
});

/** The rollup's watermark, as microseconds since the epoch (0 before its first run). */
async function rollupMark(): Promise<bigint> {
  const rows = await fleet.sql<{ us: string | null }[]>`
    SELECT (extract(epoch FROM value) * 1000000)::bigint::text AS us FROM maintenance_state WHERE name = 'rollup_5m'`;
  return BigInt(rows[0]?.us ?? "0");
}
