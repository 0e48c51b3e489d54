// What migrate sends and how its failures are classified, against a scripted
// node-postgres client: MIGRATION_FAILED when retrying would repeat the
// failure, a transient TransactionError when the database was out of reach,
// and migrateWithRetry's branch on that difference. The same against a real
// PostgreSQL, with a backend terminated mid-migration: test/db/migrate.test.ts.
import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { isSmbfleetError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/logger.ts";
import { migrateWithRetry } from "../main.ts";
import { migrate, type Migration } from "./migrate.ts";
import type { TxClient, TxConnector } from "./transaction.ts";
import { isTransactionError } from "./tx-errors.ts";

const MIGRATIONS: Migration[] = [
  { version: 1, name: "one", sql: "CREATE TABLE one (x int);" },
  { version: 2, name: "two", sql: "CREATE TABLE two (x int); SELECT nope FROM one;" },
];

type Answer = { rows?: Record<string, unknown>[]; command?: string } | Error | undefined;

/** Answers each statement from `script` (undefined: an empty success) and records what it got. */
class FakeClient extends EventEmitter implements TxClient {
  readonly sent: string[] = [];
  readonly script: (text: string) => Answer;
  constructor(script: (text: string) => Answer = () => undefined) {
    super();
    this.script = script;
  }
  async query(text: string) {
    this.sent.push(text.replace(/\s+/g, " ").trim());
    await Promise.resolve();
    const a = this.script(text);
    if (a instanceof Error) throw a;
    return {
      rows: a?.rows ?? [],
      rowCount: 0,
      command: a?.command ?? text.trim().split(" ")[0]!.toUpperCase(),
    };
  }
  release() {}
}

/** Hands out `client` (a fresh one per connect when a function), or fails the connect with `refuse`. */
function pool(client: FakeClient | (() => FakeClient | Error)): TxConnector & { connects: number } {
  const p = {
    connects: 0,
    connect() {
      p.connects++;
      const c = typeof client === "function" ? client() : client;
      return c instanceof Error ? Promise.reject(c) : Promise.resolve(c);
    },
  };
  return p;
}

const pgError = (code: string, message: string): Error => Object.assign(new Error(message), { code });

describe("migrate", () => {
  it("runs each migration in its own transaction, under the lock, with its schema_migrations row", async () => {
    const c = new FakeClient();
    const out = await migrate(pool(c), { migrations: MIGRATIONS.slice(0, 1) });
    expect(out).toEqual({ applied: [1], version: 1 });
    expect(c.sent).toEqual([
      "BEGIN ISOLATION LEVEL READ COMMITTED",
      "SET LOCAL statement_timeout = 0",
      "SELECT pg_advisory_xact_lock($1::bigint)",
      "CREATE TABLE IF NOT EXISTS schema_migrations ( version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now() )",
      "SELECT 1 FROM schema_migrations WHERE version = $1",
      "CREATE TABLE one (x int);",
      "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
      "COMMIT",
    ]);
  });

  it("skips a migration schema_migrations already records", async () => {
    const c = new FakeClient((t) =>
      t.startsWith("SELECT 1 FROM schema_migrations") ? { rows: [{}] } : undefined,
    );
    expect(await migrate(pool(c), { migrations: MIGRATIONS })).toEqual({ applied: [], version: 2 });
    expect(c.sent.filter((t) => t.startsWith("CREATE TABLE one") || t.startsWith("INSERT"))).toEqual([]);
  });

  it("a migration the database refuses: MIGRATION_FAILED named by its file, rolled back", async () => {
    const c = new FakeClient((t) =>
      t === MIGRATIONS[1]!.sql ? pgError("42703", 'column "nope" does not exist') : undefined,
    );
    const err = await migrate(pool(c), { migrations: MIGRATIONS }).catch((e: unknown) => e);
    expect(isSmbfleetError(err, "MIGRATION_FAILED"), String(err)).toBe(true);
    expect((err as Error).message).toBe('migration 0002_two: column "nope" does not exist');
    expect(c.sent.at(-1)).toBe("ROLLBACK");
  });

  it("a refused connection (authentication): MIGRATION_FAILED, which no retry fixes", async () => {
    const err = await migrate(
      pool(() => pgError("28P01", "password authentication failed")),
      {
        migrations: MIGRATIONS,
      },
    ).catch((e: unknown) => e);
    expect(isSmbfleetError(err, "MIGRATION_FAILED"), String(err)).toBe(true);
    expect((err as Error).message).toBe("migration 0001_one: connecting: password authentication failed");
  });

  it.each([
    [
      "no database to connect to",
      () => pool(() => pgError("ECONNREFUSED", "connect ECONNREFUSED")),
      "DB_UNAVAILABLE",
    ],
    [
      "the backend terminated during a migration",
      () =>
        pool(
          new FakeClient((t) =>
            t === MIGRATIONS[0]!.sql
              ? pgError("57P01", "terminating connection due to administrator command")
              : undefined,
          ),
        ),
      "DB_UNAVAILABLE",
    ],
    [
      "the connection lost during COMMIT",
      () =>
        pool(
          new FakeClient((t) =>
            t === "COMMIT" ? new Error("Connection terminated unexpectedly") : undefined,
          ),
        ),
      "DB_COMMIT_UNKNOWN",
    ],
  ] as const)("%s: a transient TransactionError (%s), for the caller to retry", async (_, make, code) => {
    const err = await migrate(make(), { migrations: MIGRATIONS }).catch((e: unknown) => e);
    expect(isTransactionError(err, code), String(err)).toBe(true);
  });
});

describe("migrateWithRetry", () => {
  const capture = () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    return { lines, logger: createLogger("aggregator", { destination, level: "warn" }) };
  };

  it("retries a lost connection and finishes the migrations", async () => {
    const { lines, logger } = capture();
    let n = 0;
    const p = pool(() =>
      ++n === 1 ? pgError("57P01", "terminating connection due to administrator command") : new FakeClient(),
    );
    await migrateWithRetry(p, logger, new AbortController().signal);
    expect(p.connects).toBeGreaterThan(1);
    expect(lines.map((l) => [l["msg"], l["code"]])).toEqual([
      ["database unavailable while migrating; retrying", "DB_UNAVAILABLE"],
    ]);
  });

  it("gives up at once on MIGRATION_FAILED", async () => {
    const { lines, logger } = capture();
    const p = pool(() => pgError("28P01", "password authentication failed"));
    const err = await migrateWithRetry(p, logger, new AbortController().signal).catch((e: unknown) => e);
    expect(isSmbfleetError(err, "MIGRATION_FAILED"), String(err)).toBe(true);
    expect(p.connects).toBe(1);
    expect(lines).toEqual([]);
  });
});
