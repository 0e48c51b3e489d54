import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ResultSchema, TargetSchema } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import { FIELD_LIMITS } from "../../../shared/wire/field-limits.ts";
import { CUT_MARK, cutText, validateResult, validateTarget } from "./validate.ts";

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
    [
      { target: { address: "a".repeat(256), share: "s", port: 1 } },
      "results[4].target.address: too long: 256 bytes (limit 255)",
    ],
    [
      // 128 two-byte characters: 256 bytes in 128 UTF-16 units.
      { target: { address: "a", share: "é".repeat(128), port: 1 } },
      "results[4].target.share: too long: 256 bytes (limit 255)",
    ],
    [
      { target: { address: "a", share: "s", port: 1, domain: "d".repeat(300) } },
      "results[4].target.domain: too long: 300 bytes (limit 255)",
    ],
    [
      { target: { address: "a", share: "s", port: 1, name: "n".repeat(256) } },
      "results[4].target.name: too long: 256 bytes (limit 255)",
    ],
    [
      { target: { address: "a", share: "s", port: 1, basedir: "b".repeat(100_000) } },
      "results[4].target.basedir: too long: 100000 bytes (limit 255)",
    ],
    [
      {
        target: {
          address: "a",
          share: "s",
          port: 1,
          labels: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])),
        },
      },
      "results[4].target.labels: 17 labels (limit 16)",
    ],
    [
      { target: { address: "a", share: "s", port: 1, labels: { ["k".repeat(65)]: "v" } } },
      "results[4].target.labels: too long: 65 bytes (limit 64)",
    ],
    [
      { target: { address: "a", share: "s", port: 1, labels: { team: "v".repeat(257) } } },
      'results[4].target.labels["team"]: too long: 257 bytes (limit 256)',
    ],
    [
      { operations: [{ operation: "x".repeat(10_000), samplesMs: [] }] },
      `results[4].operations[0].operation: unknown operation "${"x".repeat(64)}…"`,
    ],
  ])("refuses %o", (over, reason) => {
    expect(validateResult(wire(over), 4, NOW, LIMITS)).toEqual({ ok: false, reason });
  });

  it("takes every field at its limit", () => {
    const L = FIELD_LIMITS;
    const target = {
      name: "n".repeat(L.maxNameBytes),
      address: "€".repeat(L.maxNameBytes / 3), // 3 bytes each
      port: 445,
      domain: "d".repeat(L.maxNameBytes),
      share: "s".repeat(L.maxNameBytes),
      basedir: "b".repeat(L.maxNameBytes),
      labels: Object.fromEntries(
        Array.from({ length: L.maxLabels }, (_, i) => [
          `${i}`.padEnd(L.maxLabelKeyBytes, "k"),
          "v".repeat(L.maxLabelValueBytes),
        ]),
      ),
    };
    const r = validateResult(
      wire({ target, failureMessage: "m".repeat(L.maxFailureMessageBytes) }),
      0,
      NOW,
      LIMITS,
    );
    expect(r.ok && r.result.target).toEqual(target);
    expect(r.ok && r.result.failureMessage).toBe("m".repeat(L.maxFailureMessageBytes));
  });

  it("stores a failure message over its limit cut and marked, not refused", () => {
    const long = validateResult(wire({ failureMessage: "x".repeat(100_000) }), 0, NOW, LIMITS);
    const kept = FIELD_LIMITS.maxFailureMessageBytes - Buffer.byteLength(CUT_MARK);
    expect(long.ok && long.result.failureMessage).toBe(`${"x".repeat(kept)}${CUT_MARK}`);
    // Never half a character: 1,015 bytes of room (1,024 less the 9-byte mark) hold 507 "é".
    const wide = cutText("é".repeat(1000), 1024);
    expect(wide).toBe(`${"é".repeat(507)}${CUT_MARK}`);
    expect(Buffer.byteLength(wide)).toBeLessThanOrEqual(1024);
    // A 4-byte character that would end past the room is left out whole.
    const astral = cutText(`${"a".repeat(1013)}😀${"a".repeat(100)}`, 1024);
    expect(astral).toBe(`${"a".repeat(1013)}${CUT_MARK}`);
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
