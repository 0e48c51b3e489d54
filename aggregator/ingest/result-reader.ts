// Reads one smbfleet.v1.Result from its wire bytes straight into what ingest
// needs of it: its COPY columns (copy-rows.ts's format) and the few fields the
// metrics read. No protobuf objects, no validated copy of them, no JSON built
// from objects: that chain (decode, validate, build, stringify) and its
// garbage were most of the aggregator's CPU per result.
//
// This is a fast path, not a second definition of validity. It takes only
// what it fully understands and finds valid: any field it does not expect, a
// field repeated, non-ASCII text, a value out of range. For everything else it
// returns null and the caller decodes the result with the generated decoder
// and validate.ts, which say what is wrong. result-reader.test.ts checks
// both paths give the same row for valid results and that this one accepts
// nothing validate.ts refuses, over generated and corrupted inputs.
import { FAILURE_CLASSES, OPERATIONS, type FailureClass, type Operation } from "../../shared/result.ts";
import { copyText } from "./copy-rows.ts";
import type { ValidTarget } from "./validate.ts";

export interface ReadOperation {
  operation: Operation;
  samplesMs: number[];
  failures: number;
}

/** A valid result ready to store; also what the metrics read (ResultForMetrics). */
export interface ReadResult {
  seq: bigint;
  target: ValidTarget;
  /** The targets row, filled in when the batch is stored. */
  targetId: bigint;
  startedAtMs: number;
  healthy: boolean;
  operations: ReadOperation[];
  aboveThreshold: Operation[];
  /** COPY columns seq … late, each followed by a tab (copy-rows.ts resultFields). */
  fields: string;
}

export interface ReadContext {
  nowMs: number;
  maxFutureSkewMs: number;
  lateAfterMs: number;
  /** The valid target encoded in bytes[start, end), or null. */
  target(bytes: Buffer, start: number, end: number): ValidTarget | null;
}

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const tag = (field: number, wire: number): number => (field << 3) | wire;

/** Index of the name spelled by b[start, end) in names, or -1. */
function nameIndex(b: Buffer, start: number, end: number, names: readonly string[]): number {
  const len = end - start;
  next: for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (name.length !== len) continue;
    for (let j = 0; j < len; j++) if (b[start + j] !== name.charCodeAt(j)) continue next;
    return i;
  }
  return -1;
}

/** `{"operation":"write","samples_ms":[` for each operation. */
const OPERATION_JSON_HEAD = OPERATIONS.map((op) => `{"operation":"${op}","samples_ms":[`);
/** No threshold crossed: shared, never mutated. */
const NONE: Operation[] = [];

export class ResultReader {
  #b: Buffer = Buffer.alloc(0);
  #pos = 0;
  /** End of the length-delimited field #len() last read. */
  #lenEnd = 0;
  /** The operation #operation() last read: its index in OPERATIONS and its JSON. */
  #opIndex = 0;
  #opJson = "";

  /** A varint of at most maxBytes bytes (≤ 7: exact as a number), or -1. */
  #varint(end: number, maxBytes: number): number {
    const b = this.#b;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < maxBytes && this.#pos < end; i++) {
      const byte = b[this.#pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    return -1;
  }

  /** Start of a length-delimited field's content (its end in #lenEnd), or -1. */
  #len(end: number): number {
    const n = this.#varint(end, 5);
    if (n < 0 || this.#pos + n > end) return -1;
    const start = this.#pos;
    this.#lenEnd = start + n;
    this.#pos = this.#lenEnd;
    return start;
  }

  /** The result in b[start, end) as sequence seq, or null for the general path. */
  read(b: Buffer, start: number, end: number, seq: bigint, ctx: ReadContext): ReadResult | null {
    this.#b = b;
    this.#pos = start;
    let target: ValidTarget | null = null;
    let startedAtMs = -1;
    let durationMs = 0;
    let healthy = -1;
    let failureClass: FailureClass | null = null;
    let failureMessage: string | null = null;
    let seen = 0; // bit per singular field number
    const operations: ReadOperation[] = [];
    let opsJson = "";
    let opsSeen = 0; // bit per operation index: each operation once
    let above = NONE;
    while (this.#pos < end) {
      const t = this.#varint(end, 5);
      const field = t >>> 3;
      if (t !== tag(4, LEN) && t !== tag(8, LEN)) {
        if (t < 0 || field > 8 || (seen & (1 << field)) !== 0) return null;
        seen |= 1 << field;
      }
      switch (t) {
        case tag(1, LEN): {
          const s = this.#len(end);
          if (s < 0) return null;
          target = ctx.target(b, s, this.#lenEnd);
          if (target === null) return null;
          break;
        }
        case tag(2, VARINT):
          startedAtMs = this.#varint(end, 7);
          if (startedAtMs < 0) return null;
          break;
        case tag(3, I64):
          if (this.#pos + 8 > end) return null;
          durationMs = b.readDoubleLE(this.#pos);
          this.#pos += 8;
          break;
        case tag(4, LEN): {
          const s = this.#len(end);
          if (s < 0) return null;
          const op = this.#operation(s, this.#lenEnd);
          if (op === null || (opsSeen & (1 << this.#opIndex)) !== 0) return null;
          opsSeen |= 1 << this.#opIndex;
          operations.push(op);
          opsJson += (opsJson === "" ? "" : ",") + this.#opJson;
          break;
        }
        case tag(5, LEN): {
          const s = this.#len(end);
          if (s < 0) return null;
          if (this.#lenEnd > s) {
            const i = nameIndex(b, s, this.#lenEnd, FAILURE_CLASSES);
            if (i < 0) return null;
            failureClass = FAILURE_CLASSES[i]!;
          }
          break;
        }
        case tag(6, LEN): {
          const s = this.#len(end);
          if (s < 0) return null;
          // ASCII without NUL only: the generated decoder's UTF-8 handling
          // (replacement characters, a leading BOM) stays its own.
          for (let i = s; i < this.#lenEnd; i++) if (b[i] === 0 || b[i]! > 0x7f) return null;
          if (this.#lenEnd > s) failureMessage = b.toString("latin1", s, this.#lenEnd);
          break;
        }
        case tag(7, VARINT): {
          const v = b[this.#pos++];
          if (this.#pos > end || (v !== 0 && v !== 1)) return null;
          healthy = v;
          break;
        }
        case tag(8, LEN): {
          const s = this.#len(end);
          if (s < 0) return null;
          const i = nameIndex(b, s, this.#lenEnd, OPERATIONS);
          if (i < 0) return null;
          if (above === NONE) above = [];
          above.push(OPERATIONS[i]!);
          break;
        }
        default:
          return null;
      }
    }
    if (target === null || startedAtMs <= 0 || startedAtMs - ctx.nowMs > ctx.maxFutureSkewMs) return null;
    if (!Number.isFinite(durationMs) || durationMs < 0) return null;
    const late = ctx.nowMs - startedAtMs > ctx.lateAfterMs;
    const fields =
      `${seq}\t${new Date(startedAtMs).toISOString()}\t${durationMs}\t${healthy === 1 ? "t" : "f"}\t` +
      `${failureClass ?? "\\N"}\t${copyText(failureMessage)}\t[${opsJson}]\t{${above.join(",")}}\t${late ? "t" : "f"}\t`;
    return {
      seq,
      target,
      targetId: 0n,
      startedAtMs,
      healthy: healthy === 1,
      operations,
      aboveThreshold: above,
      fields,
    };
  }

  /** One OperationStats in b[start, end), or null; its index and JSON go to #opIndex and #opJson. */
  #operation(start: number, end: number): ReadOperation | null {
    const b = this.#b;
    const outer = this.#pos;
    this.#pos = start;
    let index = -1;
    let failures = 0;
    let samplesMs: number[] | null = null;
    let samplesText = "";
    let seen = 0;
    while (this.#pos < end) {
      const t = this.#varint(end, 5);
      const field = t >>> 3;
      if (t < 0 || field > 3 || (seen & (1 << field)) !== 0) return null;
      seen |= 1 << field;
      if (t === tag(1, LEN)) {
        const s = this.#len(end);
        if (s < 0) return null;
        index = nameIndex(b, s, this.#lenEnd, OPERATIONS);
        if (index < 0) return null;
      } else if (t === tag(2, LEN)) {
        const s = this.#len(end);
        if (s < 0 || (this.#lenEnd - s) % 8 !== 0) return null;
        samplesMs = [];
        for (let p = s; p < this.#lenEnd; p += 8) {
          const v = b.readDoubleLE(p);
          if (!Number.isFinite(v) || v < 0) return null;
          samplesText += (samplesMs.length === 0 ? "" : ",") + v;
          samplesMs.push(v);
        }
      } else if (t === tag(3, VARINT)) {
        failures = this.#varint(end, 5);
        if (failures < 0 || failures > 0xffffffff) return null;
      } else {
        return null;
      }
    }
    this.#pos = outer;
    if (index < 0) return null;
    this.#opIndex = index;
    this.#opJson = `${OPERATION_JSON_HEAD[index]}${samplesText}],"failures":${failures}}`;
    return { operation: OPERATIONS[index]!, samplesMs: samplesMs ?? [], failures };
  }
}
