// Per-agent ingest limit: a token bucket on results per second. A batch is
// let through while the bucket is not in debt and then takes all its tokens
// (the bucket may go negative), so a batch larger than the burst is not
// refused forever; the average rate stays bounded either way. Buckets live in
// this process: with several replicas each enforces the limit on the streams
// it holds, which is where an agent's stream is.

/**
 * An agent that was quiet may send this many seconds' worth at once: after a
 * reconnect its first batches carry the backlog, and a live agent sends a few
 * results per target per minute, far below any sensible limit.
 */
export const DEFAULT_BURST_SECONDS = 2;

/** `what` names the limit in a refusal ("rate limit exceeded" when absent). */
export type Take = { ok: true } | { ok: false; retryAfterMs: number; what?: string };

export class TokenBucket {
  readonly #rate: number;
  readonly #capacity: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(ratePerSecond: number, burstSeconds = DEFAULT_BURST_SECONDS, now: () => number = Date.now) {
    this.#rate = ratePerSecond;
    this.#capacity = Math.max(1, ratePerSecond * burstSeconds);
    this.#now = now;
    this.#tokens = this.#capacity;
    this.#at = now();
  }

  take(n: number): Take {
    const t = this.#now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + ((t - this.#at) / 1000) * this.#rate);
    this.#at = t;
    if (this.#tokens < 0) return { ok: false, retryAfterMs: Math.ceil((-this.#tokens / this.#rate) * 1000) };
    this.#tokens -= n;
    return { ok: true };
  }

  /**
   * Takes n only when n tokens are there (no debt): for counts of messages
   * and targets, where a burst means exactly the capacity.
   */
  takeWhole(n = 1): Take {
    const t = this.#now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + ((t - this.#at) / 1000) * this.#rate);
    this.#at = t;
    if (this.#tokens < n) {
      return { ok: false, retryAfterMs: Math.ceil(((n - this.#tokens) / this.#rate) * 1000) };
    }
    this.#tokens -= n;
    return { ok: true };
  }
}

export class AgentRateLimits {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #rate: number;
  readonly #now: () => number;

  constructor(ratePerSecond: number, now: () => number = Date.now) {
    this.#rate = ratePerSecond;
    this.#now = now;
  }

  take(agent: string, n: number): Take {
    let bucket = this.#buckets.get(agent);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.#rate, DEFAULT_BURST_SECONDS, this.#now);
      this.#buckets.set(agent, bucket);
    }
    return bucket.take(n);
  }
}
