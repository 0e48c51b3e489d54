import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ResultSchema } from "../gen/smbfleet/v1/ingest_pb.js";
import type { ProbeResult } from "../result.ts";
import { resultToWire } from "./result-codec.ts";

describe("resultToWire", () => {
  it("keeps every field through a binary round trip", () => {
    const r: ProbeResult = {
      target: {
        name: "finance",
        address: "10.0.0.5",
        port: 445,
        domain: "CORP",
        share: "finance",
        basedir: ".",
        labels: { tier: "gold" },
      },
      startedAtMs: 1_795_000_000_123,
      durationMs: 31.5,
      operations: [
        { operation: "login", samplesMs: [4.25], failures: 0 },
        { operation: "write", samplesMs: [0.9, 1.1], failures: 3 },
      ],
      failureClass: "access_denied",
      failureMessage: "NT_STATUS_ACCESS_DENIED opening remote file",
      healthy: false,
      aboveThreshold: ["write"],
    };
    const back = fromBinary(ResultSchema, toBinary(ResultSchema, resultToWire(r)));
    expect(back.target?.labels).toEqual({ tier: "gold" });
    expect(back.startedAtUnixMs).toBe(1_795_000_000_123n);
    expect(back.operations.map((o) => [o.operation, o.samplesMs, o.failures])).toEqual([
      ["login", [4.25], 0],
      ["write", [0.9, 1.1], 3],
    ]);
    expect(back.failureClass).toBe("access_denied");
    expect(back.healthy).toBe(false);
    expect(back.aboveThreshold).toEqual(["write"]);
  });

  it("sends an empty failure class for a healthy run", () => {
    const w = resultToWire({
      target: { name: "n", address: "a", port: 445, domain: "", share: "s", basedir: ".", labels: {} },
      startedAtMs: 1,
      durationMs: 1,
      operations: [],
      failureClass: null,
      failureMessage: null,
      healthy: true,
      aboveThreshold: [],
    });
    expect(w.failureClass).toBe("");
    expect(w.failureMessage).toBe("");
  });
});
