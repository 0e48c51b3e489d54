// The 5-minute rollup (results_5m): per bucket × target × operation, runs,
// samples, failures, min/max/sum and p50/p95 by percentile_cont over every
// sample in the bucket. Each run recomputes, from the raw rows, every
// (bucket, target) that received anything since the previous run, so results
// replayed late from an agent's buffer land in their real bucket.
import type { Db } from "./connect.ts";

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

export async function rollup5m(sql: Db, opts: { settleSeconds?: number } = {}): Promise<RollupResult> {
  const settle = opts.settleSeconds ?? ROLLUP_SETTLE_SECONDS;
  // One statement, so one transaction without a client-side BEGIN (see
  // aggregator/ingest/store/store.ts). The advisory lock is held to its end; the
  // window is computed in SQL and never round-trips through a JS Date, which
  // would cut microseconds and could leave a row exactly at the edge.
  const out = await sql`
    WITH lock AS (
      SELECT pg_try_advisory_xact_lock(hashtext(${STATE_KEY})) AS ok
    ),
    win AS (
      SELECT coalesce((SELECT value FROM maintenance_state WHERE name = ${STATE_KEY}), '-infinity') AS lo,
             now() - make_interval(secs => ${settle}) AS hi
      FROM lock WHERE lock.ok
    ),
    dirty AS (
      SELECT DISTINCT date_bin('5 minutes', r.started_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket, r.target_id
      FROM results r, win
      WHERE r.received_at > win.lo AND r.received_at <= win.hi
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
    ),
    upserted AS (
      INSERT INTO results_5m AS t
        (bucket, target_id, operation, runs, samples, failures, min_ms, max_ms, sum_ms, p50_ms, p95_ms)
      SELECT p.bucket, p.target_id, p.operation, p.runs, coalesce(s.samples, 0), p.failures,
             s.min_ms, s.max_ms, coalesce(s.sum_ms, 0), s.p50_ms, s.p95_ms
      FROM per_op p LEFT JOIN per_sample s USING (bucket, target_id, operation)
      ON CONFLICT (bucket, target_id, operation) DO UPDATE SET
        runs = EXCLUDED.runs, samples = EXCLUDED.samples, failures = EXCLUDED.failures,
        min_ms = EXCLUDED.min_ms, max_ms = EXCLUDED.max_ms, sum_ms = EXCLUDED.sum_ms,
        p50_ms = EXCLUDED.p50_ms, p95_ms = EXCLUDED.p95_ms
      RETURNING 1
    ),
    mark AS (
      INSERT INTO maintenance_state (name, value) SELECT ${STATE_KEY}, win.hi FROM win
      ON CONFLICT (name) DO UPDATE SET value = greatest(maintenance_state.value, EXCLUDED.value)
      RETURNING value
    )
    SELECT (SELECT ok FROM lock) AS ran, (SELECT count(*) FROM upserted) AS rows, (SELECT value FROM mark) AS through`;
  const row = out[0];
  return {
    ran: row?.["ran"] === true,
    rows: Number(row?.["rows"] ?? 0),
    through: (row?.["through"] as Date | null | undefined) ?? null,
  };
}
