// One batch, one atomic write: lock the agent's row, store the new valid
// results, quarantine the new invalid ones, advance the high-water mark. The
// caller acks only after this resolves, so an Ack always means "in
// PostgreSQL", and a resend after any failure is recognised and not stored
// twice. Two aggregator replicas holding streams of the same agent serialise
// on the row lock.
//
// The write is one COPY transaction without client-side transaction control
// (copy-batch.ts explains why that is safe with postgres.js 3.4.9). It is
// all-or-nothing for the batch's sequence range, so when part of the batch is
// already at or below the high-water mark (a resend, or another replica got
// there first) PostgreSQL refuses it whole; the mark is then read, what it
// covers is dropped here as duplicates, and the rest is written.
import type { Db } from "../../db/connect.ts";
import type { Quarantined } from "../decode/batch-reader.ts";
import { copyBatch } from "./copy-batch.ts";
import { batchTail } from "./copy-rows.ts";
import type { ReadResult } from "../decode/result-reader.ts";
import { TargetCache } from "./targets.ts";
import type { ValidTarget } from "../decode/validate.ts";

export interface BatchToStore {
  /** The batch's sequence range. */
  first: bigint;
  last: bigint;
  /** Valid results and quarantined ones, each in seq order; together they cover first..last. */
  rows: readonly ReadResult[];
  invalid: readonly Quarantined[];
  /** Holds the rows' COPY columns (ReadResult fieldsStart/fieldsEnd). */
  fields: Buffer;
}

export type BatchOutcome =
  | {
      kind: "stored";
      /** The rows written (targetId filled in); not the duplicates. */
      stored: ReadResult[];
      duplicates: number;
      quarantined: { seq: bigint; reason: string }[];
    }
  /** The agent is disabled (revoked) or unknown in the database: nothing was written. */
  | { kind: "refused"; reason: string };

/**
 * Each refusal for the high-water mark means another writer advanced it
 * between our read and our write (a second replica with a stream of the same
 * agent); more than a few in a row means something is wrong.
 */
const MAX_ATTEMPTS = 4;

export async function storeBatch(
  sql: Db,
  targets: TargetCache,
  identity: { site: string; agent: string },
  batch: BatchToStore,
  receivedAtMs: number,
): Promise<BatchOutcome> {
  const { rows, invalid, last } = batch;
  // Targets first, in their own statement: a target row without results is
  // harmless, and a steady stream hits the cache and writes none. Rows of one
  // target share its object (batch-reader.ts), so this is per target, not per row.
  const distinct = new Set<ValidTarget>();
  for (const r of rows) distinct.add(r.target);
  const ids = await targets.resolve(sql, identity.site, distinct);
  const receivedAt = new Date(receivedAtMs);
  const tail = batchTail(identity.site, identity.agent, receivedAt);
  /** target_id and the constant tail that end each line, per target. */
  const lineEnd = new Map<ValidTarget, { id: bigint; bytes: Buffer }>();
  for (const t of distinct) {
    const id = ids.get(TargetCache.key(identity.site, t))!;
    lineEnd.set(t, { id, bytes: Buffer.from(`${id}${tail}`, "utf8") });
  }
  for (const r of rows) r.targetId = lineEnd.get(r.target)!.id;

  // At or below this (the high-water mark once read) everything is a duplicate.
  let floor = batch.first - 1n;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const keep = attempt === 1 ? rows : rows.filter((r) => r.seq > floor);
    const quarantine = attempt === 1 ? invalid : invalid.filter((q) => q.seq > floor);
    if (floor >= last) {
      // All at or below the mark: stored before, nothing to write.
      return { kind: "stored", stored: [], duplicates: rows.length + invalid.length, quarantined: [] };
    }
    const text = copyLines(keep, batch.fields, lineEnd);
    const out = await copyBatch(sql, {
      site: identity.site,
      agent: identity.agent,
      first: floor + 1n,
      last,
      receivedAt,
      text,
      rowCount: keep.length,
      quarantine,
    });
    if (out.kind === "committed") {
      return {
        kind: "stored",
        stored: keep as ReadResult[],
        duplicates: rows.length + invalid.length - keep.length - quarantine.length,
        quarantined: quarantine.map(({ seq, reason }) => ({ seq, reason })),
      };
    }
    if (out.why === "disabled") return { kind: "refused", reason: out.reason };
    const hw = await sql`SELECT high_water_seq FROM agents WHERE agent_id = ${identity.agent}`;
    const mark = hw[0]?.["high_water_seq"] as bigint | undefined;
    if (mark === undefined) {
      return { kind: "refused", reason: `agent ${identity.agent} is disabled or not registered` };
    }
    floor = mark;
  }
  throw new Error(
    `batch ${batch.first}-${last}: the high-water mark kept moving (${MAX_ATTEMPTS} attempts); another writer for agent ${identity.agent}?`,
  );
}

/** The COPY data: each row's columns, then its target's id and the batch tail. */
function copyLines(
  rows: readonly ReadResult[],
  fields: Buffer,
  lineEnd: ReadonlyMap<ValidTarget, { bytes: Buffer }>,
): Buffer {
  let size = 0;
  for (const r of rows) size += r.fieldsEnd - r.fieldsStart + lineEnd.get(r.target)!.bytes.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const r of rows) {
    at += fields.copy(out, at, r.fieldsStart, r.fieldsEnd);
    at += lineEnd.get(r.target)!.bytes.copy(out, at);
  }
  return out;
}
