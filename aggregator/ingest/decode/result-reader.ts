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
import { FAILURE_CLASSES, OPERATIONS, type Operation } from "../../../shared/result.ts";
import { copyText, isoTime, type CopyWriter } from "../store/copy-rows.ts";
import { FIELD_LIMITS } from "../../../shared/wire/field-limits.ts";
import type { ValidTarget } from "./validate.ts";

export interface ReadOperation {
  operation: Operation;
  samplesMs: number[];
  failures: number;
}

/**
 * A valid result ready to store, with what the metrics read of it once it
 * is stored (batch-reader.ts committed).
 */
export interface ReadResult {
  seq: bigint;
  target: ValidTarget;
  /** The targets row, filled in when the batch is stored. */
  targetId: bigint;
  startedAtMs: number;
  healthy: boolean;
  /**
   * null when read by the fast path: the metrics' objects are built from
   * `bytes` after the commit, so that they do not live through it (objects
   * that survive young-generation GCs are what GC time grows with).
   */
  operations: ReadOperation[] | null;
  /** The result's wire bytes: bytes[start, end). */
  bytes: Buffer;
  start: number;
  end: number;
  aboveThreshold: Operation[];
  /**
   * Where its COPY columns seq … late (each followed by a tab, as
   * copy-rows.ts resultFields writes them) lie in the batch's CopyWriter.
   */
  fieldsStart: number;
  fieldsEnd: number;
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

/**
 * Parses first, into fields of the reader (no allocation), and writes only
 * a result found valid: what is read of a result that turns out invalid is
 * never written.
 */
export class ResultReader {
  #b: Buffer = Buffer.alloc(0);
  #pos = 0;
  /** End of the length-delimited field #len() last read. */
  #lenEnd = 0;
  /** The operations of the result being read: index in OPERATIONS, samples (packed doubles) and failures. */
  #ops = 0;
  readonly #opIndex = new Int32Array(OPERATIONS.length);
  readonly #opSamples = new Int32Array(OPERATIONS.length);
  readonly #opSamplesEnd = new Int32Array(OPERATIONS.length);
  readonly #opFailures = new Float64Array(OPERATIONS.length);
  /** above_threshold entries (indexes in OPERATIONS); repeats are allowed. */
  readonly #above: number[] = [];

  /** Doubles are read through a DataView of #b (Buffer.readDoubleLE costs a call each). */
  #view: DataView = new DataView(new ArrayBuffer(8));

  #use(b: Buffer): void {
    if (b === this.#b) return;
    this.#b = b;
    this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

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

  /**
   * The result in b[start, end) as sequence seq, its columns appended to
   * out; or null (nothing written) for the general path.
   */
  read(
    b: Buffer,
    start: number,
    end: number,
    seq: bigint,
    ctx: ReadContext,
    out: CopyWriter,
  ): ReadResult | null {
    this.#use(b);
    this.#pos = start;
    this.#ops = 0;
    this.#above.length = 0;
    let target: ValidTarget | null = null;
    let startedAtMs = -1;
    let durationMs = 0;
    let healthy = 0;
    let failureClass = -1;
    let messageStart = 0;
    let messageEnd = 0;
    let seen = 0; // bit per singular field number
    let opsSeen = 0; // bit per operation index: each operation once
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
          durationMs = this.#view.getFloat64(this.#pos, true);
          this.#pos += 8;
          break;
        case tag(4, LEN): {
          const s = this.#len(end);
          if (s < 0 || !this.#operation(s, this.#lenEnd)) return null;
          const index = this.#opIndex[this.#ops - 1]!;
          if ((opsSeen & (1 << index)) !== 0) return null;
          opsSeen |= 1 << index;
          break;
        }
        case tag(5, LEN): {
          const s = this.#len(end);
          if (s < 0) return null;
          if (this.#lenEnd > s) {
            failureClass = nameIndex(b, s, this.#lenEnd, FAILURE_CLASSES);
            if (failureClass < 0) return null;
          }
          break;
        }
        case tag(6, LEN): {
          const s = this.#len(end);
          if (s < 0) return null;
          // ASCII without NUL only: the generated decoder's UTF-8 handling
          // (replacement characters, a leading BOM) stays its own, and so does
          // cutting a message over its limit (validate.ts cutText).
          if (this.#lenEnd - s > FIELD_LIMITS.maxFailureMessageBytes) return null;
          for (let i = s; i < this.#lenEnd; i++) if (b[i] === 0 || b[i]! > 0x7f) return null;
          messageStart = s;
          messageEnd = this.#lenEnd;
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
          this.#above.push(i);
          break;
        }
        default:
          return null;
      }
    }
    if (target === null || startedAtMs <= 0 || startedAtMs - ctx.nowMs > ctx.maxFutureSkewMs) return null;
    if (!Number.isFinite(durationMs) || durationMs < 0) return null;

    // Valid: write the columns (copy-rows.ts resultFields, byte for byte).
    // Strings built here die at once; only bytes stay with the batch.
    const fieldsStart = out.length;
    let json = "";
    for (let o = 0; o < this.#ops; o++) {
      json += `${o === 0 ? "" : ","}${OPERATION_JSON_HEAD[this.#opIndex[o]!]}`;
      const samplesEnd = this.#opSamplesEnd[o]!;
      for (let p = this.#opSamples[o]!; p < samplesEnd; p += 8) {
        json += `${p === this.#opSamples[o] ? "" : ","}${this.#view.getFloat64(p, true)}`;
      }
      json += `],"failures":${this.#opFailures[o]}}`;
    }
    const aboveThreshold = this.#above.length === 0 ? NONE : this.#above.map((i) => OPERATIONS[i]!);
    // One write per row: each write call costs more than the concatenation.
    out.ascii(
      `${seq}\t${isoTime(startedAtMs)}\t${durationMs}\t${healthy === 1 ? "t" : "f"}\t` +
        `${failureClass < 0 ? "\\N" : FAILURE_CLASSES[failureClass]}\t` +
        `${messageEnd > messageStart ? copyText(b.toString("latin1", messageStart, messageEnd)) : "\\N"}\t` +
        `[${json}]\t{${aboveThreshold.join(",")}}\t${ctx.nowMs - startedAtMs > ctx.lateAfterMs ? "t" : "f"}\t`,
    );
    return {
      seq,
      target,
      targetId: 0n,
      startedAtMs,
      healthy: healthy === 1,
      operations: null,
      bytes: b,
      start,
      end,
      aboveThreshold,
      fieldsStart,
      fieldsEnd: out.length,
    };
  }

  /**
   * The operations of a result read() took, decoded again from its bytes
   * (read() has checked every field of them).
   */
  operations(b: Buffer, start: number, end: number): ReadOperation[] {
    this.#use(b);
    this.#pos = start;
    const operations: ReadOperation[] = [];
    while (this.#pos < end) {
      const t = this.#varint(end, 5);
      if ((t & 7) === VARINT) this.#varint(end, 10);
      else if ((t & 7) === I64) this.#pos += 8;
      else {
        const s = this.#len(end);
        if (t !== tag(4, LEN)) continue;
        this.#ops = 0;
        this.#operation(s, this.#lenEnd);
        const samplesMs: number[] = [];
        for (let p = this.#opSamples[0]!; p < this.#opSamplesEnd[0]!; p += 8) {
          samplesMs.push(this.#view.getFloat64(p, true));
        }
        operations.push({
          operation: OPERATIONS[this.#opIndex[0]!]!,
          samplesMs,
          failures: this.#opFailures[0]!,
        });
      }
    }
    return operations;
  }

  /** One OperationStats in b[start, end) into #op*[#ops++]; false when not taken. */
  #operation(start: number, end: number): boolean {
    const b = this.#b;
    const outer = this.#pos;
    this.#pos = start;
    let index = -1;
    let failures = 0;
    let samples = 0;
    let samplesEnd = 0;
    let seen = 0;
    while (this.#pos < end) {
      const t = this.#varint(end, 5);
      const field = t >>> 3;
      if (t < 0 || field > 3 || (seen & (1 << field)) !== 0) return false;
      seen |= 1 << field;
      if (t === tag(1, LEN)) {
        const s = this.#len(end);
        if (s < 0) return false;
        index = nameIndex(b, s, this.#lenEnd, OPERATIONS);
        if (index < 0) return false;
      } else if (t === tag(2, LEN)) {
        const s = this.#len(end);
        if (s < 0 || (this.#lenEnd - s) % 8 !== 0) return false;
        for (let p = s; p < this.#lenEnd; p += 8) {
          const v = this.#view.getFloat64(p, true);
          if (!Number.isFinite(v) || v < 0) return false;
        }
        samples = s;
        samplesEnd = this.#lenEnd;
      } else if (t === tag(3, VARINT)) {
        failures = this.#varint(end, 5);
        if (failures < 0 || failures > 0xffffffff) return false;
      } else {
        return false;
      }
    }
    this.#pos = outer;
    if (index < 0 || this.#ops >= OPERATIONS.length) return false;
    const o = this.#ops++;
    this.#opIndex[o] = index;
    this.#opSamples[o] = samples;
    this.#opSamplesEnd[o] = samplesEnd;
    this.#opFailures[o] = failures;
    return true;
  }
}
