// One batch, one atomic statement: lock the agent's row, skip what is at or
// below its high-water sequence, store the new valid results, quarantine the
// new invalid ones, advance the high-water mark. The caller acks only after
// this resolves, so an Ack always means "in PostgreSQL", and a resend after
// any failure is recognised and not stored twice. Two aggregator replicas
// holding streams of the same agent serialise on the row lock.
//
// Why one statement (data-modifying CTEs over json_to_recordset) and not
// BEGIN; COPY; UPDATE; COMMIT: postgres.js 3.4.9 crashes the process with an
// uncatchable TypeError when a connection dies inside sql.begin() (its own
// ROLLBACK writes to the closed socket: porsager/postgres#1208), and never
// settles a COPY that fails after CopyDone (#1173). A single statement is a
// transaction of its own, needs no ROLLBACK, and costs one round trip; here
// it stores about as many rows per second as the COPY transaction did
// (docs/benchmarks.md, bench/ingest). Pinned by test/ingest/db-outage.test.ts.
import type { Db } from "../db/connect.ts";
import { TargetCache } from "./targets.ts";
import type { Checked, ValidResult } from "./validate.ts";

export interface BatchRow {
  seq: bigint;
  checked: Checked;
  /** The result's wire bytes, kept for the quarantine; only needed when checked is not ok. */
  raw: Uint8Array | null;
}

export interface StoredResult extends ValidResult {
  seq: bigint;
  targetId: bigint;
  late: boolean;
}

export interface StoreOptions {
  /** A result whose start is older than this on arrival is stored with late = true. */
  lateAfterMs: number;
}

export type BatchOutcome =
  | {
      kind: "stored";
      previousHighWater: bigint;
      highWater: bigint;
      stored: StoredResult[];
      duplicates: number;
      quarantined: { seq: bigint; reason: string }[];
    }
  /** The agent is disabled (revoked) or unknown in the database: nothing was written. */
  | { kind: "refused"; reason: string };

export async function storeBatch(
  sql: Db,
  targets: TargetCache,
  identity: { site: string; agent: string },
  rows: readonly BatchRow[],
  receivedAtMs: number,
  opts: StoreOptions,
): Promise<BatchOutcome> {
  const valid: { seq: bigint; result: ValidResult }[] = [];
  const invalid: { seq: bigint; reason: string; raw: Uint8Array }[] = [];
  for (const r of rows) {
    if (r.checked.ok) valid.push({ seq: r.seq, result: r.checked.result });
    else invalid.push({ seq: r.seq, reason: r.checked.reason, raw: r.raw ?? new Uint8Array() });
  }
  // Targets first, in their own statement: a target row without results is
  // harmless, and a steady stream hits the cache and writes none.
  const ids = await targets.resolve(
    sql,
    identity.site,
    valid.map((v) => v.result.target),
  );
  const candidates: StoredResult[] = valid.map(({ seq, result }) => ({
    ...result,
    seq,
    targetId: ids.get(TargetCache.key(identity.site, result.target))!,
    late: receivedAtMs - result.startedAtMs > opts.lateAfterMs,
  }));
  const last = rows.at(-1)?.seq ?? 0n;
  const receivedAt = new Date(receivedAtMs);

  const out = await sql`
    WITH a AS (
      SELECT high_water_seq AS hw FROM agents
      WHERE agent_id = ${identity.agent} AND NOT disabled
      FOR UPDATE
    ),
    ins AS (
      INSERT INTO results (site, agent_id, seq, target_id, started_at, duration_ms, healthy,
                           failure_class, failure_message, operations, above_threshold, late, received_at)
      SELECT ${identity.site}, ${identity.agent}, x.seq, x.target_id, x.started_at, x.duration_ms, x.healthy,
             x.failure_class, x.failure_message, x.operations, x.above_threshold, x.late, ${receivedAt}
      FROM a, json_to_recordset(${resultsJson(candidates)}::text::json) AS x(
        seq bigint, target_id bigint, started_at timestamptz, duration_ms double precision, healthy boolean,
        failure_class text, failure_message text, operations json, above_threshold text[], late boolean)
      WHERE x.seq > a.hw
      RETURNING 1
    ),
    q AS (
      INSERT INTO quarantined_results (site, agent_id, seq, reason, raw, received_at)
      SELECT ${identity.site}, ${identity.agent}, y.seq, y.reason, decode(y.raw, 'base64'), ${receivedAt}
      FROM a, json_to_recordset(${quarantineJson(invalid)}::text::json) AS y(seq bigint, reason text, raw text)
      WHERE y.seq > a.hw
      RETURNING 1
    ),
    u AS (
      UPDATE agents SET high_water_seq = greatest(a.hw, ${last}), last_seen = now()
      FROM a WHERE agents.agent_id = ${identity.agent}
      RETURNING a.hw AS previous, agents.high_water_seq AS high_water
    )
    SELECT u.previous, u.high_water, (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM q) AS quarantined
    FROM u`;
  const row = out[0];
  if (row === undefined) {
    return { kind: "refused", reason: `agent ${identity.agent} is disabled or not registered` };
  }
  const previousHighWater = row["previous"] as bigint;
  const stored = candidates.filter((c) => c.seq > previousHighWater);
  const quarantined = invalid
    .filter((q) => q.seq > previousHighWater)
    .map(({ seq, reason }) => ({ seq, reason }));
  // The statement's own counts must agree with what we report and feed to metrics.
  if (Number(row["inserted"]) !== stored.length || Number(row["quarantined"]) !== quarantined.length) {
    throw new Error(
      `batch ${rows[0]?.seq}-${last}: stored ${row["inserted"]}/${stored.length}, quarantined ${row["quarantined"]}/${quarantined.length}`,
    );
  }
  return {
    kind: "stored",
    previousHighWater,
    highWater: row["high_water"] as bigint,
    stored,
    duplicates: rows.length - stored.length - quarantined.length,
    quarantined,
  };
}

/**
 * The batch as a JSON array for json_to_recordset, written by hand: it is the
 * hottest loop of ingest, and building objects for JSON.stringify doubled its
 * cost and garbage. Only validated values reach it: operation names are known
 * identifiers and numbers are finite, so both are valid JSON as they print;
 * free text goes through JSON.stringify.
 */
function resultsJson(results: readonly StoredResult[]): string {
  let out = "[";
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    let ops = "";
    for (const o of r.operations) {
      ops += `${ops === "" ? "" : ","}{"operation":"${o.operation}","samples_ms":[${o.samplesMs.join(",")}],"failures":${o.failures}}`;
    }
    out +=
      `${i === 0 ? "" : ","}{"seq":${r.seq},"target_id":${r.targetId},` +
      `"started_at":"${new Date(r.startedAtMs).toISOString()}","duration_ms":${r.durationMs},` +
      `"healthy":${r.healthy},"failure_class":${JSON.stringify(r.failureClass)},` +
      `"failure_message":${JSON.stringify(r.failureMessage)},"operations":[${ops}],` +
      `"above_threshold":[${r.aboveThreshold.map((a) => `"${a}"`).join(",")}],"late":${r.late}}`;
  }
  return `${out}]`;
}

function quarantineJson(invalid: readonly { seq: bigint; reason: string; raw: Uint8Array }[]): string {
  return JSON.stringify(
    invalid.map((q) => ({
      seq: q.seq.toString(),
      reason: q.reason,
      raw: Buffer.from(q.raw).toString("base64"),
    })),
  );
}
