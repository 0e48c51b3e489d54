// Versioned SQL migrations: aggregator/db/migrations/NNNN_name.sql, applied in
// order, each in its own transaction together with its schema_migrations row.
// Every transaction first takes one advisory lock, so replicas that start at
// the same moment apply each migration once, one after the other
// (test/db/migrate.test.ts runs two at once).
//
// The transactions run through withTransaction on node-postgres, not
// postgres.js's sql.begin(): a backend dying during a start-up migration must
// cost the aggregator one retry, not the process (docs/architecture.md,
// "Transactions against PostgreSQL"; test/db/migrate.test.ts and
// test/db/startup-termination.test.ts).
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { SmbfleetError, errorMessage, isSmbfleetError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import type { Secret } from "../../shared/secret.ts";
import type { Db } from "./connect.ts";
import { withTransaction, type TxConnector } from "./transaction.ts";
import { isTransactionError } from "./tx-errors.ts";
import { closeTxPool, createTxPool, type TxPool } from "./tx-pool.ts";

export const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

/** Arbitrary but fixed: the advisory lock key all smbfleet migrators agree on ("smbfleet" in ASCII, cut to int8). */
export const MIGRATION_LOCK_KEY = 0x736d62666c656574n;

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Reads and orders the migration files; a gap-free, duplicate-free sequence from 1 is required. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith(".sql"));
  const migrations: Migration[] = [];
  for (const file of files) {
    const m = FILE_PATTERN.exec(file);
    if (m === null) {
      throw new SmbfleetError("MIGRATION_FAILED", `${join(dir, file)}: name must be NNNN_lower_snake.sql`);
    }
    migrations.push({ version: Number(m[1]), name: m[2]!, sql: readFileSync(join(dir, file), "utf8") });
  }
  migrations.sort((a, b) => a.version - b.version);
  migrations.forEach((mig, i) => {
    if (mig.version !== i + 1) {
      throw new SmbfleetError(
        "MIGRATION_FAILED",
        `${dir}: migration versions must run 1, 2, 3… without gaps or duplicates; found ${mig.version} at position ${i + 1}`,
      );
    }
  });
  return migrations;
}

export interface MigrateResult {
  /**
   * Versions this call applied (empty when the schema was already current).
   * A migration whose COMMIT was cut (DB_COMMIT_UNKNOWN) and that did commit
   * is found applied by the next call, and listed by neither.
   */
  applied: number[];
  /** The schema's version afterwards. */
  version: number;
}

export interface MigrateOptions {
  logger?: Logger;
  /** Default: loadMigrations(). */
  migrations?: Migration[];
}

const migrationId = (mig: Migration): string => `${String(mig.version).padStart(4, "0")}_${mig.name}`;

/**
 * Applies every migration not yet recorded. Safe to run concurrently from
 * several processes. `pool` should have no statement limit
 * (openMigrationPool): a migration may rewrite a big table, and it may wait
 * for another replica's migration to finish.
 *
 * Failures, by what the caller must do:
 * - MIGRATION_FAILED (SmbfleetError): the database refused a migration (or
 *   the connection itself: authentication, no such database). Running it
 *   again repeats the failure; the migration was rolled back entirely.
 * - TransactionError with `transient` set (DB_UNAVAILABLE, DB_CONFLICT,
 *   DB_COMMIT_UNKNOWN): the database was unreachable or the connection was
 *   lost. Call migrate again; it re-reads schema_migrations under the lock,
 *   so a migration that did commit is not applied twice.
 */
export async function migrate(pool: TxConnector, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = opts.migrations ?? loadMigrations();
  const applied: number[] = [];
  let version = 0;
  for (const mig of migrations) {
    const id = migrationId(mig);
    try {
      const did = await withTransaction(
        pool,
        async (tx) => {
          // A migration may rewrite big tables, and the lock waits for another
          // replica's migration: neither is a stuck batch. (Also when the
          // role or database sets a statement_timeout of its own.)
          await tx.execute("SET LOCAL statement_timeout = 0");
          await tx.query("SELECT pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK_KEY.toString()]);
          // Created under the lock: two concurrent CREATE TABLE IF NOT EXISTS can
          // still collide on the catalog's unique index.
          await tx.execute(`CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
          )`);
          const done = await tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [mig.version]);
          if (done.length > 0) return false;
          try {
            // No parameters: the simple Query protocol, which runs a file of several statements.
            await tx.execute(mig.sql);
          } catch (err) {
            // The file's own failure, named by the file rather than by its first line.
            if (!isTransactionError(err, "DB_REJECTED")) throw err;
            throw new SmbfleetError("MIGRATION_FAILED", `migration ${id}: ${errorMessage(err.cause)}`, {
              cause: err,
            });
          }
          await tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
            mig.version,
            mig.name,
          ]);
          return true;
        },
        { name: `migration ${id}` },
      );
      if (did) {
        applied.push(mig.version);
        opts.logger?.info({ version: mig.version, name: mig.name }, "migration applied");
      }
      version = mig.version;
    } catch (err) {
      if (isSmbfleetError(err, "MIGRATION_FAILED")) throw err;
      if (isTransactionError(err) && err.transient) throw err;
      // DB_REJECTED outside the file (the connection refused, COMMIT answered
      // ROLLBACK): its message already names the migration and the statement.
      throw new SmbfleetError(
        "MIGRATION_FAILED",
        isTransactionError(err) ? err.message : `migration ${id}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }
  return { applied, version };
}

/**
 * One connection with no statement limit, on the server or the client: see
 * migrate. Close it with closeTxPool once migrate has settled.
 */
export function openMigrationPool(url: Secret, opts: { applicationName: string; logger?: Logger }): TxPool {
  return createTxPool({
    url,
    max: 1,
    statementTimeoutMs: 0,
    applicationName: opts.applicationName,
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
  });
}

/** migrate on a pool of its own, closed before it returns: one call for tests, benches and `smbfleet migrate`. */
export async function migrateUrl(
  url: Secret,
  opts: MigrateOptions & { applicationName?: string } = {},
): Promise<MigrateResult> {
  const { applicationName = "smbfleet-migrate", ...rest } = opts;
  const pool = openMigrationPool(url, {
    applicationName,
    ...(rest.logger === undefined ? {} : { logger: rest.logger }),
  });
  try {
    return await migrate(pool, rest);
  } finally {
    await closeTxPool(pool);
  }
}

/**
 * null when every migration this build knows is applied, else why not. A
 * schema newer than this build (a later replica migrated first) is fine: all
 * migrations are additive.
 */
export async function schemaStatus(
  sql: Db,
  migrations: Migration[] = loadMigrations(),
): Promise<string | null> {
  const latest = migrations.at(-1)?.version ?? 0;
  const exists = await sql`SELECT to_regclass('schema_migrations') IS NOT NULL AS present`;
  if (exists[0]?.["present"] !== true) return "no migrations applied";
  const rows = await sql`SELECT version FROM schema_migrations`;
  const have = new Set(rows.map((r) => Number(r["version"])));
  const missing = migrations.filter((m) => !have.has(m.version)).map((m) => m.version);
  if (missing.length > 0) return `migrations not applied: ${missing.join(", ")} (latest ${latest})`;
  return null;
}
