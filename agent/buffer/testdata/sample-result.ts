// A realistic probe result for buffer and sender tests and benchmarks: the
// shape smbprobe's sequence produces (5 writes, 1 ls, 5 reads, 5 unlinks).
import type { ProbeResult } from "../../../shared/result.ts";

/** Result number i; startedAtMs and samples vary with i so that encodings differ. */
export function sampleResult(i: number, startedAtMs = 1_795_000_000_000 + i * 1000): ProbeResult {
  const five = (base: number): number[] => [0, 1, 2, 3, 4].map((k) => base + ((i + k) % 7) / 10);
  return {
    target: {
      name: `share-${i % 10}`,
      address: "10.0.0.5",
      port: 445,
      domain: "CORP",
      share: `share${i % 10}`,
      basedir: ".",
      labels: { tier: "gold" },
    },
    startedAtMs,
    durationMs: 30 + (i % 13),
    operations: [
      { operation: "login", samplesMs: [4 + (i % 5) / 10], failures: 0 },
      { operation: "write", samplesMs: five(0.9), failures: 0 },
      { operation: "ls_dir", samplesMs: [1.2], failures: 0 },
      { operation: "read", samplesMs: five(1.0), failures: 0 },
      { operation: "unlink", samplesMs: five(1.0), failures: 0 },
      { operation: "integrity", samplesMs: [0.05], failures: 0 },
    ],
    failureClass: null,
    failureMessage: null,
    healthy: true,
    aboveThreshold: [],
  };
}
