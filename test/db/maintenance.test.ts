import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeDatabase, connectDatabase, type Db } from "../../aggregator/db/connect.ts";
import { startMaintenance } from "../../aggregator/db/maintenance.ts";
import { migrate } from "../../aggregator/db/migrate.ts";
import {
  applyRetention,
  ensurePartitions,
  listPartitions,
  partitionName,
} from "../../aggregator/db/partitions.ts";
import { rollup5m } from "../../aggregator/db/rollup.ts";
import { withTransaction } from "../../aggregator/db/transaction.ts";
import { closeTxPool, createTxPool, type TxPool } from "../../aggregator/db/tx-pool.ts";
import { silentLogger } from "../../shared/logger.ts";
import { Secret } from "../../shared/secret.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";

const DAY = 86_400_000;
let pg: RunningPostgres;
let sql: Db;
/** What maintenance runs on in the aggregator. */
let pool: TxPool;
let targetId: bigint;
let seq = 0;

async function insertResult(
  startedAt: Date,
  ops: { operation: string; samples_ms: number[]; failures: number }[],
) {
  seq += 1;
  await sql`
    INSERT INTO results (site, agent_id, seq, target_id, started_at, duration_ms, healthy, operations, late, received_at)
    VALUES ('paris', 'paris-01', ${seq}, ${targetId}, ${startedAt}, 10, true, ${sql.json(ops)}, false, clock_timestamp())`;
}

async function partitionOf(startedAt: Date): Promise<string> {
  const rows = await sql`SELECT tableoid::regclass::text AS p FROM results WHERE started_at = ${startedAt}`;
  return String(rows[0]?.["p"]);
}

beforeAll(async () => {
  pg = await startPostgres();
  const url = new Secret(await pg.createDatabase("maint"));
  sql = connectDatabase({ url, poolSize: 3 });
  pool = createTxPool({ url, max: 2, applicationName: "smbfleet-test-maintenance" });
  await migrate(pool);
  await sql`INSERT INTO sites (site) VALUES ('paris')`;
  const t = await sql`
    INSERT INTO targets (site, address, port, domain, share, basedir, name)
    VALUES ('paris', '10.0.0.5', 445, 'CORP', 'finance', '.', 'finance') RETURNING id`;
  targetId = t[0]?.["id"] as bigint;
});
afterAll(async () => {
  if (sql !== undefined) await closeDatabase(sql);
  if (pool !== undefined) await closeTxPool(pool);
  await pg?.stop();
});

describe("partitions", () => {
  it("creates daily partitions around today, idempotently, and moves DEFAULT rows into them", async () => {
    const now = new Date("2031-03-10T12:00:00Z");
    // A result for a day with no partition yet goes to DEFAULT...
    const early = new Date("2031-03-11T08:00:00Z");
    await insertResult(early, [{ operation: "login", samples_ms: [1], failures: 0 }]);
    expect(await partitionOf(early)).toBe("results_default");

    const created = await ensurePartitions(pool, now, { aheadDays: 2, behindDays: 1 });
    expect(created).toEqual([
      "results_p20310309",
      "results_p20310310",
      "results_p20310311",
      "results_p20310312",
    ]);
    expect(await ensurePartitions(pool, now, { aheadDays: 2, behindDays: 1 })).toEqual([]);
    // ...and moves into its day's partition when that is created.
    expect(await partitionOf(early)).toBe("results_p20310311");

    const inRange = new Date("2031-03-12T23:59:59.999Z");
    await insertResult(inRange, [{ operation: "login", samples_ms: [1], failures: 0 }]);
    expect(await partitionOf(inRange)).toBe("results_p20310312");
    const outside = new Date("2031-03-13T00:00:00Z");
    await insertResult(outside, [{ operation: "login", samples_ms: [1], failures: 0 }]);
    expect(await partitionOf(outside)).toBe("results_default");
  });

  it("retention drops whole old partitions and old DEFAULT, rollup and quarantine rows", async () => {
    await sql`INSERT INTO results_5m (bucket, target_id, operation, runs, samples, failures, sum_ms)
              VALUES ('2031-03-01T00:00:00Z', ${targetId}, 'login', 1, 1, 0, 1),
                     ('2031-03-20T00:00:00Z', ${targetId}, 'login', 1, 1, 0, 1)`;
    // 2031-03-20 + raw 7 days: cutoff 2031-03-13T12:00; days ending at or before it go.
    const r = await applyRetention(pool, new Date("2031-03-20T12:00:00Z"), { rawDays: 7, rollupDays: 10 });
    expect(r.droppedPartitions).toEqual([
      "results_p20310309",
      "results_p20310310",
      "results_p20310311",
      "results_p20310312",
    ]);
    // The 2031-03-13T00:00 row in DEFAULT is older than the cutoff too.
    expect(r.deletedDefaultRows).toBe(1);
    expect(r.deletedRollupRows).toBe(1);
    expect(await listPartitions(pool)).toEqual([]);
    const left = await sql`SELECT count(*)::int AS n FROM results`;
    expect(left[0]?.["n"]).toBe(0);
    expect(partitionName(new Date("2031-01-02T23:00:00Z"))).toBe("results_p20310102");
  });
});

describe("rollup5m", () => {
  it("aggregates per 5 minutes × target × operation and folds in late results", async () => {
    const bucket = new Date(Math.floor((Date.now() - DAY) / 300_000) * 300_000);
    const at = (s: number) => new Date(bucket.getTime() + s * 1000);
    await insertResult(at(10), [
      { operation: "write", samples_ms: [1, 2, 3], failures: 0 },
      { operation: "login", samples_ms: [], failures: 1 },
    ]);
    await insertResult(at(70), [{ operation: "write", samples_ms: [4, 10], failures: 2 }]);
    // Next bucket: must not mix in.
    await insertResult(at(300), [{ operation: "write", samples_ms: [100], failures: 0 }]);

    const first = await rollup5m(pool, { settleSeconds: 0 });
    expect(first.ran).toBe(true);
    const rows = await sql`
      SELECT operation, runs, samples, failures, min_ms, max_ms, sum_ms, p50_ms, p95_ms
      FROM results_5m WHERE bucket = ${bucket} AND target_id = ${targetId} ORDER BY operation`;
    expect(rows.map((r) => ({ ...r }))).toEqual([
      {
        operation: "login",
        runs: 1,
        samples: 0,
        failures: 1,
        min_ms: null,
        max_ms: null,
        sum_ms: 0,
        p50_ms: null,
        p95_ms: null,
      },
      // samples 1,2,3,4,10: p50 = 3; p95 = 4 + 0.8 × (10 − 4) = 8.8
      {
        operation: "write",
        runs: 2,
        samples: 5,
        failures: 2,
        min_ms: 1,
        max_ms: 10,
        sum_ms: 20,
        p50_ms: 3,
        p95_ms: expect.closeTo(8.8, 9) as number,
      },
    ]);

    // A result replayed late into the same bucket updates it on the next run.
    await insertResult(at(200), [{ operation: "write", samples_ms: [5], failures: 0 }]);
    await rollup5m(pool, { settleSeconds: 0 });
    const after = await sql`
      SELECT runs, samples, p50_ms FROM results_5m
      WHERE bucket = ${bucket} AND target_id = ${targetId} AND operation = 'write'`;
    expect({ ...after[0] }).toEqual({ runs: 3, samples: 6, p50_ms: 3.5 });
    const next = await sql`SELECT samples FROM results_5m WHERE bucket = ${at(300)} AND operation = 'write'`;
    expect(next[0]?.["samples"]).toBe(1);
  });

  it("skips the run while another replica holds the job's state row", async () => {
    const [held, skipped] = await withTransaction(pool, async (tx) => {
      const rows = await tx.query("SELECT value FROM maintenance_state WHERE name = 'rollup_5m' FOR UPDATE");
      return [rows.length, await rollup5m(pool, { settleSeconds: 0 })] as const;
    });
    expect(held).toBe(1);
    expect(skipped).toEqual({ ran: false, rows: 0, through: null });
    expect((await rollup5m(pool, { settleSeconds: 0 })).ran).toBe(true);
  });

  it("waits for the settle margin before rolling up fresh rows", async () => {
    const fresh = new Date(Math.floor(Date.now() / 300_000) * 300_000);
    await insertResult(fresh, [{ operation: "read", samples_ms: [1], failures: 0 }]);
    await rollup5m(pool, { settleSeconds: 3600 });
    const none = await sql`SELECT count(*)::int AS n FROM results_5m WHERE operation = 'read'`;
    expect(none[0]?.["n"]).toBe(0);
  });
});

describe("startMaintenance", () => {
  it("runs partitions, rollup and retention together", async () => {
    const m = startMaintenance(pool, silentLogger(), {
      rawDays: 30,
      rollupDays: 365,
      now: () => new Date("2031-06-01T00:00:00Z"),
      intervalMs: 3_600_000,
    });
    try {
      expect(await m.runOnce()).toBe(true);
      expect(await listPartitions(pool)).toContain("results_p20310603");
    } finally {
      await m.stop();
    }
  });
});
