// Test support: targets and results without a config file or a share, for
// the scheduler's, the metrics' and the commands' unit tests.
import type { AgentConfig, ProbeTarget } from "../../shared/config/types.ts";
import type { OperationStats, ProbeResult } from "../../shared/result.ts";
import { Secret } from "../../shared/secret.ts";
import { realClock, type Clock } from "./clock.ts";
import { targetRefOf } from "../../shared/config/target-ref.ts";

export function fakeTarget(overrides: Partial<ProbeTarget> = {}): ProbeTarget {
  return {
    name: "finance",
    address: "127.0.0.1",
    port: 445,
    domain: "CORP",
    share: "finance",
    username: "probe",
    password: new Secret("s3cret pass%word"),
    remoteBasedir: ".",
    intervalSeconds: 60,
    timeoutSeconds: 30,
    operationTimeoutSeconds: 10,
    latencyThresholdsMs: {
      login: 2000,
      write: 1000,
      ls_dir: 1000,
      read: 1000,
      unlink: 1000,
      integrity: 1000,
      rename: 1000,
      mkdir: 1000,
      rmdir: 1000,
    },
    auth: "ntlm",
    protocol: null,
    labels: {},
    fileCount: 5,
    fileSizeBytes: 4096,
    rename: false,
    mkdir: false,
    line: 1,
    ...overrides,
  };
}

export function healthyOperations(): OperationStats[] {
  return [
    { operation: "login", samplesMs: [12.5], failures: 0 },
    { operation: "write", samplesMs: [0.9, 1.1, 0.8, 1.0, 0.95], failures: 0 },
    { operation: "ls_dir", samplesMs: [1.2], failures: 0 },
    { operation: "read", samplesMs: [1.0, 1.05, 0.98, 1.2, 1.1], failures: 0 },
    { operation: "unlink", samplesMs: [1.0, 0.9, 1.1, 0.97, 1.02], failures: 0 },
  ];
}

export function fakeResult(target: ProbeTarget, overrides: Partial<ProbeResult> = {}): ProbeResult {
  return {
    target: targetRefOf(target),
    startedAtMs: Date.now(),
    durationMs: 20,
    operations: healthyOperations(),
    failureClass: null,
    failureMessage: null,
    healthy: true,
    aboveThreshold: [],
    ...overrides,
  };
}

/** A Clock on vitest's fake timeline: vi.useFakeTimers() fakes Date and setTimeout. */
export const fakeTimersClock: Clock = {
  now: () => Date.now(),
  wallNow: () => Date.now(),
  sleep: (ms, signal) => realClock.sleep(ms, signal),
};

export function fakeAgentConfig(
  probes: ProbeTarget[],
  overrides: Partial<AgentConfig["agent"]> = {},
): AgentConfig {
  return {
    file: "/etc/smbfleet/agent.toml",
    agent: {
      site: "paris",
      id: "paris-01",
      bufferPath: "/tmp/unused-buffer.db",
      httpListen: { host: "127.0.0.1", port: 0 },
      maxConcurrentRuns: 4,
      maxSpawnsPerSecond: 50,
      buffer: { maxBytes: 1 << 20, maxAgeSeconds: 3600 },
      ...overrides,
    },
    aggregator: null,
    probes,
    warnings: [],
  };
}
