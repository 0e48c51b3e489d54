// The order rules a stream's batches must follow, as the agent sees them in
// Rejects: sequences start at 1, never go backwards on a stream, and after a
// batch is refused for a rate limit (results, batches, new targets), later
// batches wait until it is resent (the sender is go-back-N). Pure state, no I/O: the stream asks, then
// answers the agent. test/ingest/bad-input.test.ts pins every message.
import { status } from "@grpc/grpc-js";
import type { Take } from "./rate-limit.ts";
import type { StatusCode } from "./replies.ts";

export type Verdict =
  | { ok: true; first: bigint; last: bigint }
  | { ok: false; code: StatusCode; message: string; first: bigint; last: bigint };

export class BatchOrder {
  /** Last sequence of the last batch accepted on this stream. */
  #lastSeq: bigint | null = null;
  /** After a rate-limit refusal: later batches wait until this seq is resent. */
  #resendFrom: bigint | null = null;

  /** What an empty batch is acked with: the last accepted sequence. */
  get lastSeq(): bigint {
    return this.#lastSeq ?? 0n;
  }

  /**
   * Checks a batch of `count` (≥ 1) results from `firstSeq`; `take` asks the
   * rate limit, and only when every other rule passed. An accepted batch
   * counts as received at once: if its commit fails, the stream ends.
   */
  admit(firstSeq: bigint, count: number, take: (n: number) => Take): Verdict {
    const first = firstSeq;
    const last = first + BigInt(count) - 1n;
    const no = (code: StatusCode, message: string, at = true): Verdict => ({
      ok: false,
      code,
      message,
      first: at ? first : 0n,
      last: at ? last : 0n,
    });
    if (first === 0n) {
      return no(status.INVALID_ARGUMENT, "batch.first_seq: must be 1 or more (sequences start at 1)", false);
    }
    if (this.#lastSeq !== null && first <= this.#lastSeq) {
      return no(
        status.OUT_OF_RANGE,
        `batch.first_seq ${first} goes backwards: seq ${this.#lastSeq} was already received on this stream`,
      );
    }
    if (this.#resendFrom !== null && first > this.#resendFrom) {
      return no(
        status.RESOURCE_EXHAUSTED,
        `refused: waiting for seq ${this.#resendFrom} to be resent first (it was refused for the rate limit)`,
      );
    }
    const taken = take(count);
    if (!taken.ok) {
      if (this.#resendFrom === null || first < this.#resendFrom) this.#resendFrom = first;
      return no(
        status.RESOURCE_EXHAUSTED,
        `${taken.what ?? "rate limit exceeded"}; resend from seq ${first} in ${taken.retryAfterMs} ms`,
      );
    }
    this.#resendFrom = null;
    this.#lastSeq = last;
    return { ok: true, first, last };
  }
}
