-- Probe results, partitioned by the agent's start time (one partition per UTC
-- day, created ahead by the maintenance task; aggregator/db/partitions.ts).
-- The DEFAULT partition takes anything no daily partition covers (a result
-- from before the first partition, or a day the maintenance task has not
-- reached yet), so an insert never fails for want of a partition.

CREATE TABLE results (
  site             text NOT NULL,
  agent_id         text NOT NULL,
  -- Per-agent sequence number assigned by the agent's buffer, never reused.
  seq              bigint NOT NULL,
  target_id        bigint NOT NULL,
  -- The agent's clock: results keep their real timestamps, however late they arrive.
  started_at       timestamptz NOT NULL,
  duration_ms      double precision NOT NULL,
  healthy          boolean NOT NULL,
  failure_class    text,
  failure_message  text,
  -- [{"operation": "write", "samples_ms": [0.9, ...], "failures": 0}, ...]
  -- json, not jsonb: it is written once per result and read whole, and
  -- PostgreSQL stores json ~40 % faster (validated text, no binary build;
  -- measured for docs/benchmarks.md). ->, ->> and json_array_elements work alike.
  operations       json NOT NULL,
  above_threshold  text[] NOT NULL DEFAULT '{}',
  -- received_at - started_at was over ingest.late_after_seconds (replayed from the agent's buffer).
  late             boolean NOT NULL,
  received_at      timestamptz NOT NULL,
  -- A unique key on a partitioned table must include the partition key.
  -- Exactly-once rests on agents.high_water_seq; this key is the backstop.
  PRIMARY KEY (agent_id, seq, started_at)
) PARTITION BY RANGE (started_at);

CREATE INDEX results_target_started_idx ON results (target_id, started_at);
-- The rollup job finds what arrived since its last run by received_at. Rows are
-- inserted in received_at order, so a BRIN index is nearly free to maintain.
CREATE INDEX results_received_brin ON results USING brin (received_at);

CREATE TABLE results_default PARTITION OF results DEFAULT;

-- Results refused by validation, kept with their wire bytes and the reason so
-- that bad input is answered but never silently lost.
CREATE TABLE quarantined_results (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  site         text NOT NULL,
  agent_id     text NOT NULL,
  seq          bigint NOT NULL,
  reason       text NOT NULL,
  -- smbfleet.v1.Result, protobuf binary, as received.
  raw          bytea NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantined_results_agent_idx ON quarantined_results (agent_id, seq);
