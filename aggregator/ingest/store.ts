// One batch, one transaction: lock the agent's row, skip what is at or below
// its high-water sequence, store the new valid results, quarantine the new
// invalid ones, advance the high-water mark, commit. The caller acks only
// after this resolves, so an Ack always means "in PostgreSQL", and a resend
// after any failure is recognised and not stored twice. Two aggregator
// replicas holding streams of the same agent serialise on the row lock.
import type { Db, Tx } from "../db/connect.ts";
import { copyIn } from "../db/copy-in.ts";
import { copyField, copyIdentArray } from "./copy-text.ts";
import { TargetCache, type PendingTargets } from "./targets.ts";
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

/**
 * How rows reach `results`. Both are one statement per batch; bench/ingest
 * measures them side by side (docs/benchmarks.md) and COPY is the default.
 */
export type InsertMethod = "copy" | "unnest";

export interface StoreOptions {
  /** A result whose start is older than this on arrival is stored with late = true. */
  lateAfterMs: number;
  insertMethod?: InsertMethod;
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

const RESULT_COLUMNS = `site, agent_id, seq, target_id, started_at, duration_ms, healthy,
  failure_class, failure_message, operations, above_threshold, late, received_at`;

export async function storeBatch(
  sql: Db,
  targets: TargetCache,
  identity: { site: string; agent: string },
  rows: readonly BatchRow[],
  receivedAtMs: number,
  opts: StoreOptions,
): Promise<BatchOutcome> {
  const last = rows.at(-1)?.seq;
  let pending: PendingTargets = new Map();
  const outcome = await sql.begin(async (tx): Promise<BatchOutcome> => {
    const agentRows = await tx`
      SELECT high_water_seq, disabled FROM agents WHERE agent_id = ${identity.agent} FOR UPDATE`;
    const agent = agentRows[0];
    if (agent === undefined) return { kind: "refused", reason: `agent ${identity.agent} is not registered` };
    if (agent["disabled"] === true) return { kind: "refused", reason: `agent ${identity.agent} is disabled` };
    const previousHighWater = agent["high_water_seq"] as bigint;

    const fresh = rows.filter((r) => r.seq > previousHighWater);
    const valid: { seq: bigint; result: ValidResult }[] = [];
    const quarantined: { seq: bigint; reason: string; raw: Uint8Array }[] = [];
    for (const r of fresh) {
      if (r.checked.ok) valid.push({ seq: r.seq, result: r.checked.result });
      else quarantined.push({ seq: r.seq, reason: r.checked.reason, raw: r.raw ?? new Uint8Array() });
    }

    const resolved = await targets.resolve(
      tx,
      identity.site,
      valid.map((v) => v.result.target),
    );
    pending = resolved.pending;
    const stored: StoredResult[] = valid.map(({ seq, result }) => ({
      ...result,
      seq,
      targetId: resolved.ids.get(TargetCache.key(identity.site, result.target))!,
      late: receivedAtMs - result.startedAtMs > opts.lateAfterMs,
    }));
    if (stored.length > 0) {
      const receivedAt = new Date(receivedAtMs);
      if ((opts.insertMethod ?? "copy") === "copy") await copyResults(tx, identity, stored, receivedAt);
      else await unnestResults(tx, identity, stored, receivedAt);
    }
    if (quarantined.length > 0) {
      await tx`INSERT INTO quarantined_results ${tx(
        quarantined.map((q) => ({
          site: identity.site,
          agent_id: identity.agent,
          seq: q.seq,
          reason: q.reason,
          raw: Buffer.from(q.raw),
        })),
      )}`;
    }
    const highWater = last !== undefined && last > previousHighWater ? last : previousHighWater;
    await tx`UPDATE agents SET high_water_seq = ${highWater}, last_seen = now() WHERE agent_id = ${identity.agent}`;
    return {
      kind: "stored",
      previousHighWater,
      highWater,
      stored,
      duplicates: rows.length - fresh.length,
      quarantined: quarantined.map(({ seq, reason }) => ({ seq, reason })),
    };
  });
  if (outcome.kind === "stored") targets.commit(pending);
  return outcome;
}

function operationsJson(r: ValidResult): string {
  return JSON.stringify(
    r.operations.map((o) => ({ operation: o.operation, samples_ms: o.samplesMs, failures: o.failures })),
  );
}

async function copyResults(
  tx: Tx,
  identity: { site: string; agent: string },
  stored: readonly StoredResult[],
  receivedAt: Date,
): Promise<void> {
  const site = copyField(identity.site);
  const agent = copyField(identity.agent);
  const received = receivedAt.toISOString();
  let text = "";
  for (const r of stored) {
    text +=
      `${site}\t${agent}\t${r.seq}\t${r.targetId}\t${new Date(r.startedAtMs).toISOString()}\t${r.durationMs}\t` +
      `${r.healthy ? "t" : "f"}\t${copyField(r.failureClass)}\t${copyField(r.failureMessage)}\t` +
      `${copyField(operationsJson(r))}\t${copyIdentArray(r.aboveThreshold)}\t${r.late ? "t" : "f"}\t${received}\n`;
  }
  await copyIn(tx, `COPY results (${RESULT_COLUMNS}) FROM STDIN`, text);
}

async function unnestResults(
  tx: Tx,
  identity: { site: string; agent: string },
  stored: readonly StoredResult[],
  receivedAt: Date,
): Promise<void> {
  await tx`
    INSERT INTO results (${tx.unsafe(RESULT_COLUMNS)})
    SELECT ${identity.site}, ${identity.agent}, u.seq, u.target_id, u.started_at, u.duration_ms, u.healthy,
           u.failure_class, u.failure_message, u.operations::jsonb, u.above_threshold::text[], u.late, ${receivedAt}
    FROM unnest(
      ${stored.map((r) => r.seq.toString())}::bigint[],
      ${stored.map((r) => r.targetId.toString())}::bigint[],
      ${stored.map((r) => new Date(r.startedAtMs).toISOString())}::timestamptz[],
      ${stored.map((r) => r.durationMs)}::double precision[],
      ${stored.map((r) => (r.healthy ? "t" : "f"))}::boolean[],
      ${stored.map((r) => r.failureClass) as never}::text[],
      ${stored.map((r) => r.failureMessage) as never}::text[],
      ${stored.map(operationsJson)}::text[],
      ${stored.map((r) => copyIdentArray(r.aboveThreshold))}::text[],
      ${stored.map((r) => (r.late ? "t" : "f"))}::boolean[]
    ) AS u(seq, target_id, started_at, duration_ms, healthy, failure_class, failure_message, operations,
           above_threshold, late)`;
}
