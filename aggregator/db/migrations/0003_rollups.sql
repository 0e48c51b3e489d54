-- 5-minute aggregates per target and operation, for long ranges after the raw
-- partitions are dropped. Maintained by aggregator/db/rollup.ts: each run
-- recomputes every (bucket, target) that received results since the last run,
-- so late (buffered) results are folded in too.

CREATE TABLE results_5m (
  bucket      timestamptz NOT NULL,
  target_id   bigint NOT NULL,
  operation   text NOT NULL,
  -- Runs that reported this operation.
  runs        integer NOT NULL,
  -- Latency samples (successful attempts) and failed attempts.
  samples     integer NOT NULL,
  failures    integer NOT NULL,
  min_ms      double precision,
  max_ms      double precision,
  sum_ms      double precision NOT NULL,
  -- Continuous percentiles (percentile_cont) over all samples in the bucket.
  p50_ms      double precision,
  p95_ms      double precision,
  PRIMARY KEY (bucket, target_id, operation)
);
CREATE INDEX results_5m_target_idx ON results_5m (target_id, bucket);

-- Small key/value state for periodic jobs (the rollup's received_at watermark).
CREATE TABLE maintenance_state (
  name        text PRIMARY KEY,
  value       timestamptz NOT NULL
);
