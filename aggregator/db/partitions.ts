// Daily partitions of `results` (UTC days), created ahead of time, and
// retention that drops whole partitions rather than deleting rows. Each step
// is one statement (a DO block where several commands must commit together):
// postgres.js 3.4.9 can crash the process when a connection dies inside
// sql.begin() (see aggregator/ingest/store/store.ts), and this runs every minute
// in the long-lived aggregator. Behaviour pinned by test/db/maintenance.test.ts.
import type { Db } from "./connect.ts";

const DAY_MS = 86_400_000;
const NAME_PATTERN = /^results_p(\d{4})(\d{2})(\d{2})$/;

/**
 * DDL on `results` needs a brief exclusive lock; behind a long transaction it
 * would queue and block ingest meanwhile. Give up after this and retry on the
 * next maintenance run instead.
 */
const DDL_LOCK_TIMEOUT = "5s";

/** Start of the UTC day containing t. */
export function utcDay(t: Date): Date {
  return new Date(Math.floor(t.getTime() / DAY_MS) * DAY_MS);
}

export function partitionName(day: Date): string {
  const iso = utcDay(day).toISOString(); // YYYY-MM-DDT...
  return `results_p${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}`;
}

/** The UTC day a partition name stands for, or null when it is not one of ours. */
export function partitionDay(name: string): Date | null {
  const m = NAME_PATTERN.exec(name);
  if (m === null) return null;
  const day = new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`);
  return Number.isNaN(day.getTime()) ? null : day;
}

/** Names of the daily partitions that exist now. */
export async function listPartitions(sql: Db): Promise<string[]> {
  const rows = await sql`
    SELECT c.relname AS name
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'results'::regclass`;
  return rows
    .map((r) => String(r["name"]))
    .filter((n) => partitionDay(n) !== null)
    .sort();
}

/**
 * Makes sure a partition exists for every UTC day from `behindDays` before
 * now to `aheadDays` after. Rows that already sit in the DEFAULT partition
 * for such a day are moved into the new partition in the same transaction
 * (PostgreSQL refuses to attach a partition whose rows are in DEFAULT).
 * Returns the partitions that were missing when it looked.
 */
export async function ensurePartitions(
  sql: Db,
  now: Date,
  opts: { aheadDays: number; behindDays: number },
): Promise<string[]> {
  const existing = new Set(await listPartitions(sql));
  const created: string[] = [];
  const today = utcDay(now).getTime();
  for (let d = -opts.behindDays; d <= opts.aheadDays; d++) {
    const from = new Date(today + d * DAY_MS);
    const to = new Date(from.getTime() + DAY_MS);
    const name = partitionName(from);
    if (existing.has(name)) continue;
    // One DO block = one transaction: create, move DEFAULT's rows for that
    // day, attach. Another replica may have made it since we listed.
    await sql.unsafe(`
      DO $do$
      BEGIN
        PERFORM set_config('lock_timeout', '${DDL_LOCK_TIMEOUT}', true);
        IF to_regclass('${name}') IS NOT NULL THEN RETURN; END IF;
        CREATE TABLE ${name} (LIKE results INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
        WITH moved AS (
          DELETE FROM results_default
          WHERE started_at >= '${from.toISOString()}' AND started_at < '${to.toISOString()}'
          RETURNING *
        ) INSERT INTO ${name} SELECT * FROM moved;
        ALTER TABLE results ATTACH PARTITION ${name}
          FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}');
      END
      $do$`);
    // (Reported as created when it exists now, whichever replica made it.)
    created.push(name);
  }
  return created;
}

export interface RetentionResult {
  droppedPartitions: string[];
  /** Rows deleted from the DEFAULT partition, the rollups and the quarantine. */
  deletedDefaultRows: number;
  deletedRollupRows: number;
  deletedQuarantineRows: number;
}

/**
 * Drops raw partitions whose whole day ended more than rawDays ago, deletes
 * equally old rows that sit in DEFAULT and in the quarantine, and deletes
 * rollups older than rollupDays.
 */
export async function applyRetention(
  sql: Db,
  now: Date,
  opts: { rawDays: number; rollupDays: number },
): Promise<RetentionResult> {
  const rawCutoff = new Date(now.getTime() - opts.rawDays * DAY_MS);
  const rollupCutoff = new Date(now.getTime() - opts.rollupDays * DAY_MS);
  const dropped: string[] = [];
  for (const name of await listPartitions(sql)) {
    const day = partitionDay(name)!;
    if (day.getTime() + DAY_MS > rawCutoff.getTime()) continue;
    await sql.unsafe(`
      DO $do$
      BEGIN
        PERFORM set_config('lock_timeout', '${DDL_LOCK_TIMEOUT}', true);
        DROP TABLE IF EXISTS ${name};
      END
      $do$`);
    dropped.push(name);
  }
  const def = await sql`DELETE FROM results_default WHERE started_at < ${rawCutoff}`;
  const quarantine = await sql`DELETE FROM quarantined_results WHERE received_at < ${rawCutoff}`;
  const rollups = await sql`DELETE FROM results_5m WHERE bucket < ${rollupCutoff}`;
  return {
    droppedPartitions: dropped,
    deletedDefaultRows: def.count,
    deletedRollupRows: rollups.count,
    deletedQuarantineRows: quarantine.count,
  };
}
