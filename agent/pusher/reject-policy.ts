// What the sender does with a Reject, by its gRPC status code: one table.
// "retry": the aggregator refuses for now (rate limit, database busy); the
// batch is resent after a delay, however often. "discard": the data itself is
// refused (invalid field, seq already behind the high-water mark); resending
// cannot help, so the range leaves the buffer, counted as rejected.
// "retry_limited": anything else — resent a few times in case it was a
// passing fault, then discarded, so that one poison batch never stalls the
// whole backlog behind it.
import { status } from "@grpc/grpc-js";

export type RejectAction = "retry" | "discard" | "retry_limited";

/** How often an unexpected refusal of one batch is retried before it is discarded. */
export const MAX_LIMITED_RETRIES = 3;

const TABLE: ReadonlyMap<number, RejectAction> = new Map([
  [status.RESOURCE_EXHAUSTED, "retry"],
  [status.UNAVAILABLE, "retry"],
  [status.ABORTED, "retry"],
  [status.INVALID_ARGUMENT, "discard"],
  [status.OUT_OF_RANGE, "discard"],
  [status.ALREADY_EXISTS, "discard"],
  [status.FAILED_PRECONDITION, "discard"],
]);

export function rejectAction(code: number): RejectAction {
  return TABLE.get(code) ?? "retry_limited";
}
