// Backoff is a small object: it grows, caps, jitters, resets on success, and
// its sleep ends early when the signal aborts (shutdown).

export interface BackoffOptions {
  /** First delay. 500 ms: long enough not to hammer a restarting server. */
  initialMs: number;
  /** Cap. 30 s: an agent reconnects within half a minute of HQ coming back. */
  maxMs: number;
  /** Growth per failure. */
  factor: number;
  /** Fraction of the delay randomised (0..1), so a fleet does not reconnect in lockstep. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 };

export class Backoff {
  readonly #opts: BackoffOptions;
  readonly #random: () => number;
  #next: number;

  constructor(opts: Partial<BackoffOptions> = {}, random: () => number = Math.random) {
    this.#opts = { ...DEFAULT_BACKOFF, ...opts };
    this.#random = random;
    this.#next = this.#opts.initialMs;
  }

  /** The delay to wait now; the one after it grows. */
  nextDelayMs(): number {
    const base = this.#next;
    this.#next = Math.min(this.#opts.maxMs, this.#next * this.#opts.factor);
    const spread = base * this.#opts.jitter;
    return Math.max(0, Math.round(base - spread + this.#random() * 2 * spread));
  }

  reset(): void {
    this.#next = this.#opts.initialMs;
  }

  /** Waits the next delay; resolves false at once if the signal aborts. */
  async sleep(signal?: AbortSignal): Promise<boolean> {
    return sleep(this.nextDelayMs(), signal);
  }
}

/** Resolves true after ms, or false as soon as the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
