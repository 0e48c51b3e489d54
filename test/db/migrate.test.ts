// migrate against a real PostgreSQL: every migration once, two migrators at
// once, a failing migration rolled back and named, and a backend terminated
// in the middle of a migration: a transient error, nothing half-applied, and
// the next call finishes the job. The statement order and the classification
// against a scripted client: aggregator/db/migrate.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase, closeDatabase, type Db } from "../../aggregator/db/connect.ts";
import {
  loadMigrations,
  migrate,
  migrateUrl,
  openMigrationPool,
  schemaStatus,
} from "../../aggregator/db/migrate.ts";
import { withTransaction } from "../../aggregator/db/transaction.ts";
import { isTransactionError } from "../../aggregator/db/tx-errors.ts";
import { closeTxPool, type TxPool } from "../../aggregator/db/tx-pool.ts";
import { isSmbfleetError } from "../../shared/errors.ts";
import { Secret } from "../../shared/secret.ts";
import { until } from "../harness/wait.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";

/** Bounds the wait for the slow migration to be running; a healthy run needs milliseconds. */
const WAIT_MS = 10_000;

let pg: RunningPostgres;
const sqls: Db[] = [];
const txPools: TxPool[] = [];

/** postgres.js, for reading the schema back (as the aggregator's readiness check does). */
function reader(url: string): Db {
  const sql = connectDatabase({ url: new Secret(url), poolSize: 2 });
  sqls.push(sql);
  return sql;
}

function migrationPool(url: string, applicationName = "smbfleet-test-migrate"): TxPool {
  const pool = openMigrationPool(new Secret(url), { applicationName });
  txPools.push(pool);
  return pool;
}

beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await Promise.all([...sqls.map((s) => closeDatabase(s)), ...txPools.map((p) => closeTxPool(p))]);
  await pg?.stop();
});

describe("migrate", () => {
  it("applies every migration once and is idempotent", async () => {
    const url = await pg.createDatabase("idem");
    const sql = reader(url);
    const pool = migrationPool(url);
    expect(await schemaStatus(sql)).toBe("no migrations applied");
    const all = loadMigrations().map((m) => m.version);
    const first = await migrate(pool);
    expect(first.applied).toEqual(all);
    expect(first.version).toBe(all.at(-1));
    const second = await migrateUrl(new Secret(url));
    expect(second.applied).toEqual([]);
    expect(await schemaStatus(sql)).toBeNull();
    const rows = await sql`SELECT version FROM schema_migrations ORDER BY version`;
    expect(rows.map((r) => Number(r["version"]))).toEqual(all);
    const tables = await sql`SELECT to_regclass('results_default') AS t, to_regclass('results_5m') AS r`;
    expect(tables[0]).toEqual({ t: "results_default", r: "results_5m" });
  });

  it("is safe with two migrators starting at once on separate connections", async () => {
    const url = await pg.createDatabase("race");
    const [ra, rb] = await Promise.all([migrate(migrationPool(url)), migrate(migrationPool(url))]);
    const all = loadMigrations().map((m) => m.version);
    // Each migration was applied by exactly one of them.
    expect([...ra.applied, ...rb.applied].sort((x, y) => x - y)).toEqual(all);
    expect(await schemaStatus(reader(url))).toBeNull();
  });

  it("rolls back a failing migration entirely and names it", async () => {
    const url = await pg.createDatabase("broken");
    const sql = reader(url);
    const dir = mkdtempSync(join(tmpdir(), "smbfleet-mig-"));
    try {
      writeFileSync(join(dir, "0001_ok.sql"), "CREATE TABLE a (x int);");
      writeFileSync(join(dir, "0002_bad.sql"), "CREATE TABLE b (x int); SELECT no_such_column FROM a;");
      const migrations = loadMigrations(dir);
      const err = await migrate(migrationPool(url), { migrations }).catch((e: unknown) => e);
      expect(isSmbfleetError(err, "MIGRATION_FAILED")).toBe(true);
      expect((err as Error).message).toMatch(/^migration 0002_bad: column "no_such_column" does not exist/);
      const t = await sql`SELECT to_regclass('a') AS a, to_regclass('b') AS b`;
      expect(t[0]).toEqual({ a: "a", b: null });
      expect(await schemaStatus(sql, migrations)).toBe("migrations not applied: 2 (latest 2)");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a backend terminated mid-migration: a transient error, nothing half-applied, the next call finishes", async () => {
    const url = await pg.createDatabase("terminated");
    const sql = reader(url);
    const pool = migrationPool(url, "smbfleet-test-migrate-terminated");
    const dir = mkdtempSync(join(tmpdir(), "smbfleet-mig-"));
    try {
      writeFileSync(join(dir, "0001_first.sql"), "CREATE TABLE first (x int);");
      // Slow on purpose, so that its backend can be terminated while it runs;
      // fast once the test has created table "fast", for the retry.
      writeFileSync(
        join(dir, "0002_slow.sql"),
        "CREATE TABLE slow (x int); SELECT pg_sleep(30) WHERE to_regclass('fast') IS NULL;",
      );
      const migrations = loadMigrations(dir);
      const running = migrate(pool, { migrations }).catch((e: unknown) => e);
      let pid: number | null = null;
      await until(
        "the slow migration running",
        async () => {
          const rows = await sql<{ pid: number }[]>`
            SELECT pid FROM pg_stat_activity
            WHERE application_name = 'smbfleet-test-migrate-terminated' AND state = 'active'
              AND query LIKE 'CREATE TABLE slow%'`;
          pid = rows[0]?.pid ?? null;
          return pid !== null;
        },
        WAIT_MS,
      );
      await sql`SELECT pg_terminate_backend(${pid})`;
      const err = await running;
      expect(isTransactionError(err, "DB_UNAVAILABLE"), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/^migration 0002_slow: /);
      // 0001 committed on its own; nothing of 0002 did.
      expect(await schemaStatus(sql, migrations)).toBe("migrations not applied: 2 (latest 2)");
      const t = await sql`SELECT to_regclass('first') AS first, to_regclass('slow') AS slow`;
      expect(t[0]).toEqual({ first: "first", slow: null });
      // The pool dropped the dead connection; the retry applies only what is missing.
      await sql`CREATE TABLE fast ()`;
      expect(await migrate(pool, { migrations })).toEqual({ applied: [2], version: 2 });
      expect(await schemaStatus(sql, migrations)).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs on a connection with no statement limit, on the server or the client", async () => {
    const pool = migrationPool(await pg.createDatabase("limits"));
    const [row] = await withTransaction(pool, (tx) => tx.query("SHOW statement_timeout"));
    expect(row).toEqual({ statement_timeout: "0" });
    expect(pool.options.query_timeout).toBe(0);
  });

  it("refuses misnamed or gapped migration files", () => {
    const dir = mkdtempSync(join(tmpdir(), "smbfleet-mig-"));
    try {
      writeFileSync(join(dir, "0001_a.sql"), "");
      writeFileSync(join(dir, "0003_c.sql"), "");
      expect(() => loadMigrations(dir)).toThrow(/without gaps or duplicates; found 3 at position 2/);
      writeFileSync(join(dir, "2_b.sql"), "");
      expect(() => loadMigrations(dir)).toThrow(/2_b\.sql: name must be NNNN_lower_snake\.sql/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
