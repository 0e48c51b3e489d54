import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ResultSchema, TargetSchema } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import { validateResult, validateTarget } from "./validate.ts";

const NOW = Date.parse("2031-01-01T00:00:00Z");
const LIMITS = { maxFutureSkewMs: 300_000 };

function wire(over: Record<string, unknown> = {}) {
  return create(ResultSchema, {
    target: { name: "", address: "10.0.0.5", port: 445, domain: "CORP", share: "finance", basedir: "." },
    startedAtUnixMs: BigInt(NOW - 1_000),
    durationMs: 30,
    operations: [{ operation: "write", samplesMs: [1, 2], failures: 1 }],
    healthy: false,
    failureClass: "access_denied",
    failureMessage: "NT_STATUS_ACCESS_DENIED",
    aboveThreshold: ["write"],
    ...over,
  });
}

describe("validateResult", () => {
  it("accepts a well-formed result and defaults an empty name as smbprobe does", () => {
    const r = validateResult(wire(), 0, NOW, LIMITS);
    expect(r).toEqual({
      ok: true,
      result: {
        target: {
          name: "10.0.0.5/finance",
          address: "10.0.0.5",
          port: 445,
          domain: "CORP",
          share: "finance",
          basedir: ".",
          labels: {},
        },
        startedAtMs: NOW - 1_000,
        durationMs: 30,
        healthy: false,
        failureClass: "access_denied",
        failureMessage: "NT_STATUS_ACCESS_DENIED",
        operations: [{ operation: "write", samplesMs: [1, 2], failures: 1 }],
        aboveThreshold: ["write"],
      },
    });
  });

  it.each([
    [{ target: undefined }, "results[4].target: required"],
    [{ target: { address: "a", share: "s", port: 0 } }, "results[4].target.port: must be 1-65535, got 0"],
    [
      { target: { address: "a", share: "s\u0000x", port: 1 } },
      "results[4].target.share: contains a NUL character",
    ],
    [{ startedAtUnixMs: 0n }, "results[4].started_at_unix_ms: must be a positive Unix time, got 0"],
    [{ durationMs: -1 }, "results[4].duration_ms: negative latency -1"],
    [{ durationMs: Number.POSITIVE_INFINITY }, "results[4].duration_ms: not a finite number (Infinity)"],
    [
      {
        operations: [
          { operation: "read", samplesMs: [1] },
          { operation: "read", samplesMs: [2] },
        ],
      },
      'results[4].operations[1].operation: duplicate operation "read"',
    ],
    [
      { aboveThreshold: ["write", "teleport"] },
      'results[4].above_threshold[1]: unknown operation "teleport"',
    ],
    [{ failureMessage: "bad\u0000" }, "results[4].failure_message: contains a NUL character"],
  ])("refuses %o", (over, reason) => {
    expect(validateResult(wire(over), 4, NOW, LIMITS)).toEqual({ ok: false, reason });
  });

  it("allows the configured future skew and no more", () => {
    expect(validateResult(wire({ startedAtUnixMs: BigInt(NOW + 300_000) }), 0, NOW, LIMITS).ok).toBe(true);
    expect(validateResult(wire({ startedAtUnixMs: BigInt(NOW + 301_000) }), 0, NOW, LIMITS)).toEqual({
      ok: false,
      reason: "results[0].started_at_unix_ms: 2031-01-01T00:05:01.000Z is 301 s in the future (limit 300 s)",
    });
  });
});

describe("validateTarget", () => {
  it("names the Hello path", () => {
    expect(
      validateTarget(create(TargetSchema, { address: "", share: "s", port: 445 }), "targets[2]"),
    ).toEqual({
      ok: false,
      reason: "targets[2].address: required",
    });
  });
});
