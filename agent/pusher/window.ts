// The sender's view of one stream: the batches sent and not yet acked (the
// window), where the next batch starts, and what the aggregator refused.

export interface SeqRange {
  first: number;
  last: number;
}

export interface InFlight extends SeqRange {
  sentAt: number;
}

export class SendWindow {
  readonly #size: number;
  #inflight: InFlight[] = [];
  /** Refusals still to come for batches sent before the last rewind, by first seq; they are ignored. */
  readonly #stale = new Map<number, number>();
  #refused: SeqRange[] = [];
  /** The last seq handed to the stream; the next batch starts after it. */
  cursor: number;
  /** No batch is sent before this time (set after a refusal for now). */
  resumeAt = 0;

  constructor(size: number, cursor: number) {
    this.#size = size;
    this.cursor = cursor;
  }

  get count(): number {
    return this.#inflight.length;
  }

  full(): boolean {
    return this.#inflight.length >= this.#size;
  }

  oldest(): InFlight | undefined {
    return this.#inflight[0];
  }

  sent(first: number, last: number, at: number): void {
    this.#inflight.push({ first, last, sentAt: at });
    this.cursor = last;
  }

  /** Everything up to upTo is committed: those batches leave the window, and nothing of them is still refused. */
  acked(upTo: number): void {
    this.cursor = Math.max(this.cursor, upTo);
    this.#inflight = this.#inflight.filter((b) => b.last > upTo);
    for (const first of this.#stale.keys()) if (first <= upTo) this.#stale.delete(first);
    this.#refused = this.#refused.filter((r) => r.last > upTo);
  }

  isInFlight(first: number): boolean {
    return this.#inflight.some((b) => b.first === first);
  }

  /** True, once per expected reply, for a refusal of a batch sent before the last rewind. */
  takeStale(first: number): boolean {
    const n = this.#stale.get(first) ?? 0;
    if (n === 0) return false;
    if (n === 1) this.#stale.delete(first);
    else this.#stale.set(first, n - 1);
    return true;
  }

  /**
   * Resend from `first` once resumeAt has passed. The aggregator refuses every
   * later batch already in flight until `first` comes again (go-back-N, see
   * aggregator/ingest/stream/agent-stream.ts); those refusals arrive before any reply
   * to the resent batches (replies keep the order of batches), so counting
   * them tells them apart from refusals of the resent batches with the same
   * first seq (covered by test/pusher/shipper.test.ts "rate limit").
   */
  rewind(first: number, resumeAt: number): void {
    for (const b of this.#inflight) {
      if (b.first > first) this.#stale.set(b.first, (this.#stale.get(b.first) ?? 0) + 1);
    }
    this.#inflight = this.#inflight.filter((b) => b.first < first);
    this.cursor = Math.min(this.cursor, first - 1);
    this.resumeAt = resumeAt;
  }

  /**
   * The aggregator refused [first, last] for good. It may still ack them (it
   * quarantined some results of a committed batch); a batch wholly inside the
   * range leaves the window so that a missing ack does not hold a slot.
   */
  refuse(first: number, last: number): void {
    this.#refused.push({ first, last });
    this.#inflight = this.#inflight.filter((b) => b.first < first || b.last > last);
  }

  /** Refused ranges never acked: the caller discards them, so that they are never resent. */
  takeRefused(): SeqRange[] {
    const out = this.#refused;
    this.#refused = [];
    return out;
  }
}
