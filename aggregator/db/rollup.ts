// The 5-minute rollup (results_5m): per bucket × target × operation, runs,
// samples, failures, min/max/sum and p50/p95 by percentile_cont over every
// sample in the bucket. Each run recomputes, from the raw rows, every
// (bucket, target) that received anything since the previous run, so results
// replayed late from an agent's buffer land in their real bucket.
//
// One transaction with the decision in TypeScript, as the incident engine's
// will be: lock the job's state row (a replica that finds it locked skips
// the run), read the window, roll it up, move the mark, commit. A connection
// lost anywhere in it rolls all of it back (test/db/backend-termination.test.ts).
import { withTransaction, type TxConnector } from "./transaction.ts";

/**
 * Only rows received more than this long ago are rolled up. received_at is
 * stamped before the batch commits, so a row becomes visible after later
 * stamped ones. A batch is one statement, cut off at STATEMENT_TIMEOUT_MS
 * (30 s), so five minutes covers the slowest commit that can still succeed,
 * plus clock differences between aggregator replicas and PostgreSQL.
 * Rollups serve long ranges; trailing by minutes is fine.
 */
export const ROLLUP_SETTLE_SECONDS = 300;

const STATE_KEY = "rollup_5m";

export interface RollupResult {
  /** Rows inserted or updated in results_5m. */
  rows: number;
  /** Rolled up through this received_at (exclusive of later rows). */
  through: Date | null;
  /** False when another replica held the job. */
  ran: boolean;
}

export async function rollup5m(
  pool: TxConnector,
  opts: { settleSeconds?: number } = {},
): Promise<RollupResult> {
  const settle = opts.settleSeconds ?? ROLLUP_SETTLE_SECONDS;
  return withTransaction(
    pool,
    async (tx) => {
      await tx.execute(
        "INSERT INTO maintenance_state (name, value) VALUES ($1, '-infinity') ON CONFLICT (name) DO NOTHING",
        [STATE_KEY],
      );
      // The window's ends stay PostgreSQL timestamps (as text, which keeps
      // microseconds): a JS Date would cut them and could leave a row exactly at the edge.
      const [win] = await tx.query<{ lo: string; hi: string; loAt: unknown; hiAt: unknown; empty: boolean }>(
        `SELECT value::text AS lo, hi::text AS hi, value AS "loAt", hi AS "hiAt", value >= hi AS empty
         FROM maintenance_state, LATERAL (SELECT now() - make_interval(secs => $2) AS hi) h
         WHERE name = $1
         FOR UPDATE OF maintenance_state SKIP LOCKED`,
        [STATE_KEY, settle],
      );
      if (win === undefined) return { ran: false, rows: 0, through: null };
      if (win.empty) return { ran: true, rows: 0, through: asDate(win.loAt) };
      const rows = await tx.execute(ROLLUP_WINDOW, [win.lo, win.hi]);
      await tx.execute("UPDATE maintenance_state SET value = $2::timestamptz WHERE name = $1", [
        STATE_KEY,
        win.hi,
      ]);
      return { ran: true, rows, through: asDate(win.hiAt) };
    },
    { name: "rollup" },
  );
}

/** A timestamptz as node-postgres returns it: a Date, or ±Infinity for ±infinity. */
function asDate(value: unknown): Date | null {
  return value instanceof Date ? value : null;
}

/** Every (bucket, target) with rows received in ($1, $2], recomputed from all of its raw rows. */
const ROLLUP_WINDOW = `
  WITH dirty AS (
    SELECT DISTINCT date_bin('5 minutes', r.started_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket, r.target_id
    FROM results r
    WHERE r.received_at > $1::timestamptz AND r.received_at <= $2::timestamptz
  ),
  ops AS (
    SELECT d.bucket, d.target_id,
           o.value->>'operation' AS operation,
           coalesce((o.value->>'failures')::integer, 0) AS failures,
           o.value->'samples_ms' AS samples
    FROM dirty d
    JOIN results r
      ON r.target_id = d.target_id
     AND r.started_at >= d.bucket AND r.started_at < d.bucket + INTERVAL '5 minutes'
    CROSS JOIN LATERAL json_array_elements(r.operations) o
  ),
  per_op AS (
    SELECT bucket, target_id, operation, count(*)::integer AS runs, sum(failures)::integer AS failures
    FROM ops GROUP BY bucket, target_id, operation
  ),
  per_sample AS (
    SELECT bucket, target_id, operation,
           count(*)::integer AS samples, min(ms) AS min_ms, max(ms) AS max_ms, sum(ms) AS sum_ms,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95_ms
    FROM ops CROSS JOIN LATERAL json_array_elements_text(ops.samples) s(v)
    CROSS JOIN LATERAL (SELECT s.v::double precision AS ms) x
    GROUP BY bucket, target_id, operation
  )
  INSERT INTO results_5m AS t
    (bucket, target_id, operation, runs, samples, failures, min_ms, max_ms, sum_ms, p50_ms, p95_ms)
  SELECT p.bucket, p.target_id, p.operation, p.runs, coalesce(s.samples, 0), p.failures,
         s.min_ms, s.max_ms, coalesce(s.sum_ms, 0), s.p50_ms, s.p95_ms
  FROM per_op p LEFT JOIN per_sample s USING (bucket, target_id, operation)
  ON CONFLICT (bucket, target_id, operation) DO UPDATE SET
    runs = EXCLUDED.runs, samples = EXCLUDED.samples, failures = EXCLUDED.failures,
    min_ms = EXCLUDED.min_ms, max_ms = EXCLUDED.max_ms, sum_ms = EXCLUDED.sum_ms,
    p50_ms = EXCLUDED.p50_ms, p95_ms = EXCLUDED.p95_ms`;
