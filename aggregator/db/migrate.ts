// Versioned SQL migrations: aggregator/db/migrations/NNNN_name.sql, applied in
// order, each in its own transaction together with its schema_migrations row.
// Every transaction first takes one advisory lock, so replicas that start at
// the same moment apply each migration once, one after the other
// (aggregator/db/migrate.test.ts runs two at once).
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { SmbfleetError, errorMessage } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import type { Db } from "./connect.ts";

export const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

/** Arbitrary but fixed: the advisory lock key all smbfleet migrators agree on ("smbfleet" in ASCII, cut to int8). */
const MIGRATION_LOCK_KEY = 0x736d62666c656574n;

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
  /** Versions this call applied (empty when the schema was already current). */
  applied: number[];
  /** The schema's version afterwards. */
  version: number;
}

/** Applies every migration not yet recorded. Safe to run concurrently from several processes. */
export async function migrate(
  sql: Db,
  opts: { logger?: Logger; migrations?: Migration[] } = {},
): Promise<MigrateResult> {
  const migrations = opts.migrations ?? loadMigrations();
  const applied: number[] = [];
  let version = 0;
  for (const mig of migrations) {
    try {
      const did = await sql.begin(async (tx) => {
        // A migration may rewrite big tables, and the lock waits for another
        // replica's migration: neither is a stuck batch.
        await tx.unsafe("SET LOCAL statement_timeout = 0");
        await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY.toString()}::bigint)`;
        // Created under the lock: two concurrent CREATE TABLE IF NOT EXISTS can
        // still collide on the catalog's unique index.
        await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
          version integer PRIMARY KEY,
          name text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`;
        const done = await tx`SELECT 1 FROM schema_migrations WHERE version = ${mig.version}`;
        if (done.length > 0) return false;
        await tx.unsafe(mig.sql);
        await tx`INSERT INTO schema_migrations (version, name) VALUES (${mig.version}, ${mig.name})`;
        return true;
      });
      if (did) {
        applied.push(mig.version);
        opts.logger?.info({ version: mig.version, name: mig.name }, "migration applied");
      }
      version = mig.version;
    } catch (err) {
      throw new SmbfleetError(
        "MIGRATION_FAILED",
        `migration ${String(mig.version).padStart(4, "0")}_${mig.name}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }
  return { applied, version };
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
