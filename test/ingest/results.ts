// Probe results as an agent would put them on the wire, for ingest tests and bench/ingest.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ResultSchema } from "../../shared/gen/smbfleet/v1/ingest_pb.js";

export type ResultInit = MessageInitShape<typeof ResultSchema>;

/** A healthy smbprobe-shaped run (login, 5 × write, ls_dir, 5 × read, 5 × unlink) against target `t`. */
export function wireResult(
  t = 0,
  startedAtMs = Date.now() - 5_000,
  overrides: Partial<ResultInit> = {},
): ResultInit {
  const five = [0.91, 0.95, 1.02, 0.88, 0.97];
  const base: ResultInit = {
    target: {
      name: `share-${t}`,
      address: `10.0.${Math.floor(t / 250)}.${(t % 250) + 1}`,
      port: 445,
      domain: "CORP",
      share: `finance${t}`,
      basedir: ".",
      labels: { team: "storage" },
    },
    startedAtUnixMs: BigInt(startedAtMs),
    durationMs: 31.5,
    operations: [
      { operation: "login", samplesMs: [1.8], failures: 0 },
      { operation: "write", samplesMs: five, failures: 0 },
      { operation: "ls_dir", samplesMs: [1.2], failures: 0 },
      { operation: "read", samplesMs: five, failures: 0 },
      { operation: "unlink", samplesMs: five, failures: 0 },
    ],
    failureClass: "",
    failureMessage: "",
    healthy: true,
    aboveThreshold: [],
  };
  return Object.assign(base, overrides);
}

/** `count` results for a batch, cycling over `targets` targets. */
export function wireResults(count: number, targets = 10, startedAtMs = Date.now() - 5_000): ResultInit[] {
  return Array.from({ length: count }, (_, i) => wireResult(i % targets, startedAtMs + i));
}
