// Turns a stream's RawBatch into rows to store and results to quarantine.
// Each result goes through result-reader.ts's fast path, and when that
// declines, through the generated decoder and validate.ts, which also name
// what is wrong with an invalid one. One reader per stream: it remembers the
// targets the agent sends, by their bytes, so the same target repeated in
// every batch is decoded and validated once.
import { fromBinary } from "@bufbuild/protobuf";
import { ResultSchema, TargetSchema } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import type { CommittedResult } from "../observers.ts";
import { resultFields, type CopyWriter } from "../store/copy-rows.ts";
import { malformedReason, type RawBatch } from "./raw-batch.ts";
import { ResultReader, type ReadContext, type ReadResult } from "./result-reader.ts";
import { validateResult, validateTarget, type ValidTarget, type ValidationLimits } from "./validate.ts";

export interface Quarantined {
  seq: bigint;
  reason: string;
  /** The result's bytes as received. */
  raw: Uint8Array;
}

export type ReadBatch =
  | { ok: true; rows: ReadResult[]; invalid: Quarantined[] }
  /** A result does not decode: the whole message is refused, as the generated decoder would. */
  | { ok: false; reason: string };

export interface ReadLimits extends ValidationLimits {
  lateAfterMs: number;
}

/**
 * Distinct target encodings remembered per stream. An agent has tens of
 * targets; past this many the memory is dropped and rebuilt, so an agent
 * sending ever-new targets costs decoding, not memory.
 */
const MAX_REMEMBERED_TARGETS = 4096;

/**
 * ...and bytes of them: a target is ~100 bytes, so 1 MiB holds thousands,
 * while an agent sending large targets cannot make a stream hold more.
 * A valid target encodes in under ~7 KB (validate.ts FIELD_LIMITS: five
 * names of 255 bytes, 16 labels of 64 + 256); larger ones are never remembered.
 */
const MAX_REMEMBERED_BYTES = 1024 * 1024;
const MAX_REMEMBERED_TARGET_BYTES = 8192;

export class BatchReader {
  /** Target bytes (latin1) → the valid target they encode, or null when invalid. */
  readonly #targets = new Map<string, ValidTarget | null>();
  readonly #reader = new ResultReader();
  #rememberedBytes = 0;

  #target = (bytes: Buffer, start: number, end: number): ValidTarget | null => {
    const key = end - start > MAX_REMEMBERED_TARGET_BYTES ? "" : bytes.toString("latin1", start, end);
    const known = key === "" ? undefined : this.#targets.get(key);
    if (known !== undefined) return known;
    let target: ValidTarget | null = null;
    try {
      const v = validateTarget(fromBinary(TargetSchema, bytes.subarray(start, end)), "target");
      if (v.ok) target = v.target;
    } catch {
      // Undecodable: the general path meets the same bytes and refuses the message.
    }
    if (key === "") return target;
    if (this.#targets.size >= MAX_REMEMBERED_TARGETS || this.#rememberedBytes > MAX_REMEMBERED_BYTES) {
      this.#targets.clear();
      this.#rememberedBytes = 0;
    }
    this.#targets.set(key, target);
    this.#rememberedBytes += key.length;
    return target;
  };

  /** Reads raw, appending the COPY columns of its valid results to out. */
  read(raw: RawBatch, nowMs: number, limits: ReadLimits, out: CopyWriter): ReadBatch {
    const mark = out.length;
    const ctx: ReadContext = {
      nowMs,
      maxFutureSkewMs: limits.maxFutureSkewMs,
      lateAfterMs: limits.lateAfterMs,
      target: this.#target,
    };
    const rows: ReadResult[] = [];
    const invalid: Quarantined[] = [];
    const { bytes, offsets } = raw;
    for (let i = 0; i < raw.count; i++) {
      const start = offsets[2 * i]!;
      const end = offsets[2 * i + 1]!;
      const seq = raw.firstSeq + BigInt(i);
      const fast = this.#reader.read(bytes, start, end, seq, ctx, out);
      if (fast !== null) {
        rows.push(fast);
        continue;
      }
      let decoded;
      try {
        decoded = fromBinary(ResultSchema, bytes.subarray(start, end));
      } catch {
        out.length = mark; // nothing of a refused message stays
        return { ok: false, reason: malformedReason(raw) };
      }
      const checked = validateResult(decoded, i, nowMs, limits);
      if (!checked.ok) {
        invalid.push({ seq, reason: checked.reason, raw: bytes.subarray(start, end) });
        continue;
      }
      const r = checked.result;
      const late = nowMs - r.startedAtMs > limits.lateAfterMs;
      const fieldsStart = out.length;
      out.text(resultFields(seq, r, late));
      rows.push({
        seq,
        target: r.target,
        targetId: 0n,
        startedAtMs: r.startedAtMs,
        healthy: r.healthy,
        operations: r.operations,
        bytes,
        start,
        end,
        aboveThreshold: r.aboveThreshold,
        fieldsStart,
        fieldsEnd: out.length,
      });
    }
    return { ok: true, rows, invalid };
  }

  /** What observers read of stored rows (observers.ts); built after their commit, to die young. */
  committed(rows: readonly ReadResult[]): CommittedResult[] {
    return rows.map((r) => ({
      seq: r.seq,
      targetId: r.targetId,
      target: r.target,
      startedAtMs: r.startedAtMs,
      healthy: r.healthy,
      operations: r.operations ?? this.#reader.operations(r.bytes, r.start, r.end),
      aboveThreshold: r.aboveThreshold,
    }));
  }
}
