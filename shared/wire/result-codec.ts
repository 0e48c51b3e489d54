// ProbeResult <-> smbfleet.v1.Result. The wire keeps strings for operation and
// failure class so that the aggregator can name an unknown value in its
// INVALID_ARGUMENT answer instead of silently mapping it.
import { create } from "@bufbuild/protobuf";
import {
  ResultSchema,
  TargetSchema,
  OperationStatsSchema,
  type Result,
  type Target,
} from "../gen/smbfleet/v1/ingest_pb.js";
import type { ProbeResult, TargetRef } from "../result.ts";

export function targetToWire(t: TargetRef): Target {
  return create(TargetSchema, {
    name: t.name,
    address: t.address,
    port: t.port,
    domain: t.domain,
    share: t.share,
    basedir: t.basedir,
    labels: { ...t.labels },
  });
}

export function resultToWire(r: ProbeResult): Result {
  return create(ResultSchema, {
    target: targetToWire(r.target),
    startedAtUnixMs: BigInt(Math.round(r.startedAtMs)),
    durationMs: r.durationMs,
    operations: r.operations.map((o) =>
      create(OperationStatsSchema, { operation: o.operation, samplesMs: o.samplesMs, failures: o.failures }),
    ),
    failureClass: r.failureClass ?? "",
    failureMessage: r.failureMessage ?? "",
    healthy: r.healthy,
    aboveThreshold: [...r.aboveThreshold],
  });
}
