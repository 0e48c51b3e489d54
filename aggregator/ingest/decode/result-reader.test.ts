// The fast path of ingest against the definition it shortcuts: for generated
// results (valid and invalid) and corrupted bytes, whenever ResultReader
// accepts a result, the generated decoder plus validate.ts must accept it
// too and yield the same COPY columns and the same values for the metrics;
// and it must accept every valid ASCII result, or it would not be a fast path.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ResultSchema, TargetSchema, type Result } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import { FAILURE_CLASSES, OPERATIONS } from "../../../shared/result.ts";
import { CopyWriter, resultFields } from "../store/copy-rows.ts";
import { ResultReader, type ReadContext } from "./result-reader.ts";
import { FIELD_LIMITS } from "../../../shared/wire/field-limits.ts";
import { validateResult, validateTarget } from "./validate.ts";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const LIMITS = { maxFutureSkewMs: 300_000 };
const LATE_AFTER_MS = 120_000;

/** A small deterministic PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ctx: ReadContext = {
  nowMs: NOW,
  maxFutureSkewMs: LIMITS.maxFutureSkewMs,
  lateAfterMs: LATE_AFTER_MS,
  target(bytes, start, end) {
    try {
      const v = validateTarget(fromBinary(TargetSchema, bytes.subarray(start, end)), "target");
      return v.ok ? v.target : null;
    } catch {
      return null;
    }
  },
};

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

const TEXTS = [
  "",
  "NT_STATUS_LOGON_FAILURE",
  "tab\there",
  "line\nbreak\r",
  "back\\slash",
  "x".repeat(FIELD_LIMITS.maxFailureMessageBytes), // at the limit: stored whole
  // Past here only with allowInvalid: not taken by the fast path.
  "ünïcode",
  "nul\u0000",
  "y".repeat(FIELD_LIMITS.maxFailureMessageBytes + 1), // cut by validate.ts
  "é".repeat(FIELD_LIMITS.maxFailureMessageBytes), // cut on a character boundary
];
const VALID_TEXTS = 6;

/** Field values at their limits (valid) and one past them (invalid when bad). */
const L = FIELD_LIMITS;
const atLimit = (bytes: number, bad: boolean, unit = "a"): string =>
  unit.repeat(Math.floor(bytes / Buffer.byteLength(unit))) + (bad ? "z" : "");
function labels(r: () => number, t: number, bad: () => boolean): Record<string, string> {
  const roll = r();
  if (roll < 0.4) return {};
  if (roll < 0.8) return { team: "storage", env: `e${t}` };
  if (roll < 0.85) {
    const n = L.maxLabels + (bad() ? 1 : 0);
    return Object.fromEntries(Array.from({ length: n }, (_, i) => [`l${i}`, "v"]));
  }
  if (roll < 0.9) return { [atLimit(L.maxLabelKeyBytes, bad())]: "v" };
  if (roll < 0.95) return { k: atLimit(L.maxLabelValueBytes, bad(), "é") };
  return { k: atLimit(L.maxLabelValueBytes, bad()) };
}
function name(r: () => number, usual: string, bad: () => boolean): string {
  return r() < 0.9 ? usual : atLimit(L.maxNameBytes, bad(), pick(r, ["a", "é", "€"]));
}
const SAMPLES = [0, -0, 0.91, 1.8, 1e-7, 123456.789, 5, 2 ** 40, Number.MIN_VALUE, 1e21];
const BAD_SAMPLES = [-3, Number.NaN, Number.POSITIVE_INFINITY];

/** A result that is valid with high probability, with the odd invalid field. */
function generate(r: () => number, allowInvalid: boolean): Result {
  const bad = () => allowInvalid && r() < 0.04;
  const ops = [...OPERATIONS].sort(() => r() - 0.5).slice(0, Math.floor(r() * 6));
  if (bad()) ops.push(pick(r, ["foo", "", ops[0] ?? "read"]) as never);
  const t = Math.floor(r() * 5);
  return create(ResultSchema, {
    target: {
      name: name(r, pick(r, ["", `share-${t}`]), bad),
      address: bad() ? "" : name(r, `10.0.0.${t}`, bad),
      port: bad() ? 0 : 445,
      domain: name(r, pick(r, ["CORP", ""]), bad),
      share: name(r, `s${t}`, bad),
      basedir: name(r, ".", bad),
      labels: labels(r, t, bad),
    },
    startedAtUnixMs: BigInt(
      bad() ? pick(r, [0, -5, NOW + 3_600_000]) : NOW - Math.floor(r() * 600_000) + (r() < 0.1 ? 200_000 : 0),
    ),
    durationMs: bad() ? pick(r, BAD_SAMPLES) : pick(r, SAMPLES),
    operations: ops.map((operation) => ({
      operation,
      samplesMs: Array.from({ length: Math.floor(r() * 6) }, () =>
        bad() ? pick(r, BAD_SAMPLES) : pick(r, SAMPLES),
      ),
      failures: r() < 0.2 ? Math.floor(r() * 4) : 0,
    })),
    failureClass: bad() ? "gremlins" : r() < 0.3 ? pick(r, FAILURE_CLASSES) : "",
    failureMessage: pick(r, allowInvalid ? TEXTS : TEXTS.slice(0, VALID_TEXTS)),
    healthy: r() < 0.7,
    aboveThreshold: r() < 0.2 ? [pick(r, OPERATIONS), pick(r, OPERATIONS)] : bad() ? ["nope"] : [],
  });
}

/** Compares the fast path with the general one on `bytes`; returns whether the fast path took it. */
function check(bytes: Buffer, index: number): boolean {
  const seq = 1000n + BigInt(index);
  const out = new CopyWriter();
  out.ascii("x"); // rows start anywhere in the writer
  const fast = new ResultReader().read(bytes, 0, bytes.length, seq, ctx, out);
  if (fast === null) {
    expect(out.length).toBe(1); // nothing written for a result not taken
    return false;
  }
  let decoded: Result;
  try {
    decoded = fromBinary(ResultSchema, bytes);
  } catch (err) {
    throw new Error(
      `fast path accepted bytes the decoder refuses (${String(err)}): ${bytes.toString("hex")}`,
      { cause: err },
    );
  }
  const checked = validateResult(decoded, index, NOW, LIMITS);
  if (!checked.ok) throw new Error(`fast path accepted an invalid result: ${checked.reason}`);
  const v = checked.result;
  const late = NOW - v.startedAtMs > LATE_AFTER_MS;
  expect(out.buffer.toString("utf8", fast.fieldsStart, fast.fieldsEnd)).toBe(resultFields(seq, v, late));
  expect(fast.fieldsEnd).toBe(out.length);
  expect({
    target: fast.target,
    startedAtMs: fast.startedAtMs,
    healthy: fast.healthy,
    operations: new ResultReader().operations(bytes, 0, bytes.length),
    aboveThreshold: fast.aboveThreshold,
  }).toEqual({
    target: v.target,
    startedAtMs: v.startedAtMs,
    healthy: v.healthy,
    operations: v.operations,
    aboveThreshold: v.aboveThreshold,
  });
  return true;
}

describe("ResultReader", () => {
  it("takes every valid ASCII result, with exactly the general path's row", () => {
    const r = rng(1);
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(toBinary(ResultSchema, generate(r, false)));
      expect(check(bytes, i)).toBe(true);
    }
  });

  it("accepts nothing the general path refuses or reads differently, over invalid and corrupted input", () => {
    const r = rng(2);
    let taken = 0;
    let declined = 0;
    for (let i = 0; i < 4000; i++) {
      const bytes = Buffer.from(toBinary(ResultSchema, generate(r, true)));
      // Half of them corrupted: a byte changed, a cut, or bytes inserted.
      if (i % 2 === 1 && bytes.length > 0) {
        const at = Math.floor(r() * bytes.length);
        const how = r();
        const mutated =
          how < 0.5
            ? Buffer.from(bytes.map((b, j) => (j === at ? Math.floor(r() * 256) : b)))
            : how < 0.75
              ? bytes.subarray(0, at)
              : Buffer.concat([
                  bytes.subarray(0, at),
                  Buffer.from([Math.floor(r() * 256)]),
                  bytes.subarray(at),
                ]);
        if (check(mutated, i)) taken++;
        else declined++;
      } else if (check(bytes, i)) taken++;
      else declined++;
    }
    // Both paths were exercised.
    expect(taken).toBeGreaterThan(700);
    expect(declined).toBeGreaterThan(500);
  });

  it("declines what it does not fully understand: unknown fields, non-ASCII text", () => {
    const base = toBinary(ResultSchema, generate(rng(3), false));
    const unknownField = Buffer.concat([Buffer.from(base), Buffer.from([0x48, 0x01])]); // field 9, varint 1
    expect(
      new ResultReader().read(unknownField, 0, unknownField.length, 1n, ctx, new CopyWriter()),
    ).toBeNull();
    const unicode = Buffer.from(
      toBinary(ResultSchema, create(ResultSchema, { ...generate(rng(3), false), failureMessage: "ü" })),
    );
    expect(new ResultReader().read(unicode, 0, unicode.length, 1n, ctx, new CopyWriter())).toBeNull();
    // …which the general path still reads.
    expect(validateResult(fromBinary(ResultSchema, unicode), 0, NOW, LIMITS).ok).toBe(true);
  });
});
