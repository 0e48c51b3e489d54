import { describe, expect, it } from "vitest";
import { Secret } from "../../../shared/secret.ts";
import type { ProbeTarget } from "../../../shared/config/types.ts";
import { OPERATIONS, type Operation } from "../../../shared/result.ts";
import { RunRecorder } from "./recorder.ts";

function target(thresholds: Partial<Record<Operation, number>> = {}): ProbeTarget {
  const all = Object.fromEntries(OPERATIONS.map((op) => [op, 100])) as Record<Operation, number>;
  return {
    name: "t",
    address: "10.0.0.5",
    port: 445,
    domain: "CORP",
    share: "finance",
    username: "u",
    password: new Secret("p"),
    remoteBasedir: "probe",
    intervalSeconds: 60,
    timeoutSeconds: 30,
    operationTimeoutSeconds: 10,
    latencyThresholdsMs: { ...all, ...thresholds },
    auth: "ntlm",
    protocol: null,
    labels: { env: "prod" },
    fileCount: 5,
    fileSizeBytes: 4096,
    rename: false,
    mkdir: false,
    line: 1,
  };
}

describe("RunRecorder", () => {
  it("is healthy with samples only, in the order operations were attempted", () => {
    const r = new RunRecorder();
    r.sample("login", 30);
    r.sample("write", 1);
    r.sample("write", 2);
    r.sample("ls_dir", 1.5);
    const result = r.result(target(), 1000, 40);
    expect(result.healthy).toBe(true);
    expect(result.failureClass).toBeNull();
    expect(result.operations).toEqual([
      { operation: "login", samplesMs: [30], failures: 0 },
      { operation: "write", samplesMs: [1, 2], failures: 0 },
      { operation: "ls_dir", samplesMs: [1.5], failures: 0 },
    ]);
    expect(result.target).toEqual({
      name: "t",
      address: "10.0.0.5",
      port: 445,
      domain: "CORP",
      share: "finance",
      basedir: "probe",
      labels: { env: "prod" },
    });
    expect(result.startedAtMs).toBe(1000);
    expect(result.durationMs).toBe(40);
  });

  it("keeps the first failure's class and message and counts every failure", () => {
    const r = new RunRecorder();
    r.sample("login", 30);
    r.failure("write", "access_denied", "first");
    r.failure("write", "disk_full", "second");
    const result = r.result(target(), 0, 1);
    expect(result.healthy).toBe(false);
    expect(result.failureClass).toBe("access_denied");
    expect(result.failureMessage).toBe("first");
    expect(result.operations[1]).toEqual({ operation: "write", samplesMs: [], failures: 2 });
  });

  it("is unhealthy when a median is above its threshold, not when one sample is", () => {
    const r = new RunRecorder();
    for (const ms of [1, 1, 500]) r.sample("read", ms);
    for (const ms of [200, 300, 1]) r.sample("unlink", ms);
    const result = r.result(target({ read: 100, unlink: 100 }), 0, 1);
    expect(result.aboveThreshold).toEqual(["unlink"]);
    expect(result.healthy).toBe(false);
    expect(result.failureClass).toBeNull();
  });
});
