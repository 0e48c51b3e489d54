// The aggregator's side of the wire: building its messages, and the gRPC
// statuses that end a stream. In-band Rejects leave the stream open; a status
// ends it (identity and transport problems only).
import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import {
  AggregatorMessageSchema,
  type AggregatorMessage,
} from "../../../shared/gen/smbfleet/v1/ingest_pb.js";

export type StatusCode = (typeof status)[keyof typeof status];

/** "PERMISSION_DENIED" for 7, for logs and metric labels. */
export function statusName(code: number): string {
  return (status as unknown as Record<number, string>)[code] ?? String(code);
}

/** maxMessageBytes tells the agent how large its batches may be (0: not said). */
export function welcome(highWaterSeq: bigint, serverVersion: string, maxMessageBytes = 0): AggregatorMessage {
  return create(AggregatorMessageSchema, {
    kind: {
      case: "welcome",
      value: { highWaterSeq, serverVersion, wallClockUnixMs: BigInt(Date.now()), maxMessageBytes },
    },
  });
}

export function ack(upToSeq: bigint): AggregatorMessage {
  return create(AggregatorMessageSchema, { kind: { case: "ack", value: { upToSeq } } });
}

export function reject(code: StatusCode, message: string, firstSeq = 0n, lastSeq = 0n): AggregatorMessage {
  return create(AggregatorMessageSchema, {
    kind: { case: "reject", value: { code, message, firstSeq, lastSeq } },
  });
}

/** An error that grpc-js turns into the stream's final status (server-call.ts serverErrorToStatus). */
export function statusError(
  code: StatusCode,
  details: string,
): Error & { code: StatusCode; details: string } {
  return Object.assign(new Error(details), { code, details });
}

/** Most validation messages quoted in one Reject; the rest are counted. */
const MAX_REASONS_PER_REJECT = 5;

/** One Reject for the results of a batch that were quarantined. */
export function quarantineReject(quarantined: readonly { seq: bigint; reason: string }[], total: number) {
  const shown = quarantined.slice(0, MAX_REASONS_PER_REJECT).map((q) => q.reason);
  const more = quarantined.length - shown.length;
  const message =
    `${quarantined.length} of ${total} results quarantined: ${shown.join("; ")}` +
    (more > 0 ? `; and ${more} more` : "");
  return reject(status.INVALID_ARGUMENT, message, quarantined[0]!.seq, quarantined.at(-1)!.seq);
}
