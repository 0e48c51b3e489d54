import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase, closeDatabase, type Db } from "../../aggregator/db/connect.ts";
import { loadMigrations, migrate, schemaStatus } from "../../aggregator/db/migrate.ts";
import { isSmbfleetError } from "../../shared/errors.ts";
import { Secret } from "../../shared/secret.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";

let pg: RunningPostgres;
const pools: Db[] = [];

function pool(url: string): Db {
  const sql = connectDatabase({ url: new Secret(url), poolSize: 2 });
  pools.push(sql);
  return sql;
}

beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await Promise.all(pools.map((p) => closeDatabase(p)));
  await pg?.stop();
});

describe("migrate", () => {
  it("applies every migration once and is idempotent", async () => {
    const sql = pool(await pg.createDatabase("idem"));
    expect(await schemaStatus(sql)).toBe("no migrations applied");
    const all = loadMigrations().map((m) => m.version);
    const first = await migrate(sql);
    expect(first.applied).toEqual(all);
    expect(first.version).toBe(all.at(-1));
    const second = await migrate(sql);
    expect(second.applied).toEqual([]);
    expect(await schemaStatus(sql)).toBeNull();
    const rows = await sql`SELECT version FROM schema_migrations ORDER BY version`;
    expect(rows.map((r) => Number(r["version"]))).toEqual(all);
    const tables = await sql`SELECT to_regclass('results_default') AS t, to_regclass('results_5m') AS r`;
    expect(tables[0]).toEqual({ t: "results_default", r: "results_5m" });
  });

  it("is safe with two migrators starting at once on separate connections", async () => {
    const url = await pg.createDatabase("race");
    const a = pool(url);
    const b = pool(url);
    const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
    const all = loadMigrations().map((m) => m.version);
    // Each migration was applied by exactly one of them.
    expect([...ra.applied, ...rb.applied].sort((x, y) => x - y)).toEqual(all);
    expect(await schemaStatus(a)).toBeNull();
  });

  it("rolls back a failing migration entirely and names it", async () => {
    const sql = pool(await pg.createDatabase("broken"));
    const dir = mkdtempSync(join(tmpdir(), "smbfleet-mig-"));
    try {
      writeFileSync(join(dir, "0001_ok.sql"), "CREATE TABLE a (x int);");
      writeFileSync(join(dir, "0002_bad.sql"), "CREATE TABLE b (x int); SELECT no_such_column FROM a;");
      const migrations = loadMigrations(dir);
      const err = await migrate(sql, { migrations }).catch((e: unknown) => e);
      expect(isSmbfleetError(err, "MIGRATION_FAILED")).toBe(true);
      expect((err as Error).message).toMatch(/^migration 0002_bad: column "no_such_column" does not exist/);
      const t = await sql`SELECT to_regclass('a') AS a, to_regclass('b') AS b`;
      expect(t[0]).toEqual({ a: "a", b: null });
      expect(await schemaStatus(sql, migrations)).toBe("migrations not applied: 2 (latest 2)");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
