// Adding a field to smbfleet.v1.Result (or to its Target or OperationStats)
// costs more than the .proto line: the fast path (result-reader.ts) declines
// any result carrying a field it does not know, so every such result would
// silently take the slow path, and the field would not be stored until the
// codec, validation, COPY columns and SQL learn it (docs/architecture.md,
// "Adding a field to Result"). This test fails on the first such field.
import { create, fromBinary, isFieldSet, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  OperationStatsSchema,
  ResultSchema,
  TargetSchema,
  type Result,
} from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import { CopyWriter, resultFields } from "../store/copy-rows.ts";
import { ResultReader, type ReadContext } from "./result-reader.ts";
import { validateResult, validateTarget } from "./validate.ts";

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);

/** One result with every field of every message in it set to a valid, non-default value. */
const FULL: Result = create(ResultSchema, {
  target: {
    name: "finance",
    address: "10.0.0.5",
    port: 445,
    domain: "CORP",
    share: "finance",
    basedir: "probe",
    labels: { team: "storage" },
  },
  startedAtUnixMs: BigInt(NOW - 1_000),
  durationMs: 41.5,
  operations: [{ operation: "write", samplesMs: [0.9, 1.1], failures: 1 }],
  failureClass: "timeout",
  failureMessage: "NT_STATUS_IO_TIMEOUT",
  healthy: true,
  aboveThreshold: ["write"],
});

const ctx: ReadContext = {
  nowMs: NOW,
  maxFutureSkewMs: 300_000,
  lateAfterMs: 120_000,
  target(bytes, start, end) {
    const v = validateTarget(fromBinary(TargetSchema, bytes.subarray(start, end)), "target");
    return v.ok ? v.target : null;
  },
};

function unset(schema: DescMessage, message: Parameters<typeof isFieldSet>[0]): string[] {
  return schema.fields.filter((f) => !isFieldSet(message, f)).map((f) => `${schema.typeName}.${f.name}`);
}

describe("Result's fields and the ingest fast path", () => {
  it("every field of Result, Target and OperationStats is one the fast path reads", () => {
    const missing = [
      ...unset(ResultSchema, FULL),
      ...unset(TargetSchema, FULL.target!),
      ...unset(OperationStatsSchema, FULL.operations[0]!),
    ];
    // A field listed here is new: teach result-reader.ts, validate.ts,
    // copy-rows.ts and the results table about it, then set it in FULL.
    expect(missing).toEqual([]);
  });

  it("takes the full result, with the same row as the general path", () => {
    const bytes = Buffer.from(toBinary(ResultSchema, FULL));
    const out = new CopyWriter();
    const fast = new ResultReader().read(bytes, 0, bytes.length, 7n, ctx, out);
    expect(fast, "the fast path declined a result with every field set").not.toBeNull();
    const checked = validateResult(fromBinary(ResultSchema, bytes), 0, NOW, { maxFutureSkewMs: 300_000 });
    if (!checked.ok) throw new Error(checked.reason);
    expect(out.buffer.toString("utf8", fast!.fieldsStart, fast!.fieldsEnd)).toBe(
      resultFields(7n, checked.result, false),
    );
  });
});
