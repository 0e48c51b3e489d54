// Daily partitions of `results` (UTC days), created ahead of time, and
// retention that drops whole partitions rather than deleting rows. Each step
// is a transaction on the maintenance pool (withTransaction, node-postgres):
// this runs every minute in the long-lived aggregator, where a connection
// dying inside a postgres.js transaction would end the process
// (docs/architecture.md). Behaviour pinned by test/db/maintenance.test.ts.
import { withTransaction, type Tx, type TxConnector } from "./transaction.ts";

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
export async function listPartitions(pool: TxConnector): Promise<string[]> {
  return withTransaction(pool, (tx) => partitionsIn(tx), { name: "listing partitions", readOnly: true });
}

async function partitionsIn(tx: Tx): Promise<string[]> {
  const rows = await tx.query<{ name: string }>(`
    SELECT c.relname AS name
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'results'::regclass`);
  return rows
    .map((r) => r.name)
    .filter((n) => partitionDay(n) !== null)
    .sort();
}

/** SET LOCAL for DDL on `results`: give up rather than queue ingest behind us (DDL_LOCK_TIMEOUT). */
const DDL_LOCK = `SET LOCAL lock_timeout = '${DDL_LOCK_TIMEOUT}'`;

/**
 * Makes sure a partition exists for every UTC day from `behindDays` before
 * now to `aheadDays` after. Rows that already sit in the DEFAULT partition
 * for such a day are moved into the new partition in the same transaction
 * (PostgreSQL refuses to attach a partition whose rows are in DEFAULT).
 * Returns the partitions that were missing when it looked.
 */
export async function ensurePartitions(
  pool: TxConnector,
  now: Date,
  opts: { aheadDays: number; behindDays: number },
): Promise<string[]> {
  const existing = new Set(await listPartitions(pool));
  const created: string[] = [];
  const today = utcDay(now).getTime();
  for (let d = -opts.behindDays; d <= opts.aheadDays; d++) {
    const from = new Date(today + d * DAY_MS);
    const to = new Date(from.getTime() + DAY_MS);
    const name = partitionName(from);
    if (existing.has(name)) continue;
    // One transaction: create, move DEFAULT's rows for that day, attach.
    // Replicas take the same advisory lock first, so the second one sees the
    // first one's partition instead of failing on a duplicate table.
    await withTransaction(
      pool,
      async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [name]);
        const [found] = await tx.query<{ present: boolean }>(
          "SELECT to_regclass($1) IS NOT NULL AS present",
          [name],
        );
        if (found?.present === true) return;
        await tx.execute(DDL_LOCK);
        await tx.execute(`CREATE TABLE ${name} (LIKE results INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
        await tx.execute(
          `WITH moved AS (
             DELETE FROM results_default WHERE started_at >= $1 AND started_at < $2 RETURNING *
           ) INSERT INTO ${name} SELECT * FROM moved`,
          [from, to],
        );
        await tx.execute(
          `ALTER TABLE results ATTACH PARTITION ${name}
             FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`,
        );
      },
      { name: `creating partition ${name}` },
    );
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
  pool: TxConnector,
  now: Date,
  opts: { rawDays: number; rollupDays: number },
): Promise<RetentionResult> {
  const rawCutoff = new Date(now.getTime() - opts.rawDays * DAY_MS);
  const rollupCutoff = new Date(now.getTime() - opts.rollupDays * DAY_MS);
  const dropped: string[] = [];
  for (const name of await listPartitions(pool)) {
    const day = partitionDay(name)!;
    if (day.getTime() + DAY_MS > rawCutoff.getTime()) continue;
    await withTransaction(
      pool,
      async (tx) => {
        await tx.execute(DDL_LOCK);
        await tx.execute(`DROP TABLE IF EXISTS ${name}`);
      },
      { name: `dropping partition ${name}` },
    );
    dropped.push(name);
  }
  // The three deletes commit together: retention is applied whole or not at all.
  const deleted = await withTransaction(
    pool,
    async (tx) => ({
      def: await tx.execute("DELETE FROM results_default WHERE started_at < $1", [rawCutoff]),
      quarantine: await tx.execute("DELETE FROM quarantined_results WHERE received_at < $1", [rawCutoff]),
      rollups: await tx.execute("DELETE FROM results_5m WHERE bucket < $1", [rollupCutoff]),
    }),
    { name: "retention" },
  );
  return {
    droppedPartitions: dropped,
    deletedDefaultRows: deleted.def,
    deletedRollupRows: deleted.rollups,
    deletedQuarantineRows: deleted.quarantine,
  };
}
