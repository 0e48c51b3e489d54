// Limits how fast probe runs start (each run spawns one smbclient): a token
// bucket refilled at `ratePerSecond`, holding at most `burst` tokens. Waiters
// are served in order; the wait ends early when the signal aborts.
import type { Clock } from "./clock.ts";

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #updatedAt: number;
  /** Serialises waiters so that tokens are handed out first come, first served. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(ratePerSecond: number, burst: number, clock: Clock) {
    if (!(ratePerSecond > 0)) throw new RangeError(`spawn rate must be > 0, got ${ratePerSecond}`);
    if (!(burst >= 1)) throw new RangeError(`burst must be >= 1, got ${burst}`);
    this.#ratePerMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#updatedAt = clock.now();
  }

  /** Resolves true when a token was taken, false if the signal aborted first. */
  take(signal?: AbortSignal): Promise<boolean> {
    const turn = this.#queue.then(() => this.#takeNow(signal));
    this.#queue = turn;
    return turn;
  }

  async #takeNow(signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal?.aborted) return false;
      this.#refill();
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return true;
      }
      const waitMs = Math.ceil((1 - this.#tokens) / this.#ratePerMs);
      if (!(await this.#clock.sleep(waitMs, signal))) return false;
    }
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updatedAt) * this.#ratePerMs);
    this.#updatedAt = now;
  }
}
