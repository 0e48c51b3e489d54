// Warnings about one agent's bad input, rate-limited per agent. Without it
// one 4 MiB Hello listing ~2 million unusable targets wrote ~2 million lines;
// now an agent gets a few lines a minute and the rest are counted, then told
// with the next line let through:
//   "Hello lists an unusable target; ignored (1,990 similar lines suppressed in the last 60 s)"
import type { Logger } from "../../../shared/logger.ts";
import { TokenBucket } from "./rate-limit.ts";

/**
 * Keys remembered (agents, or peer addresses before an agent is known). Past
 * this the oldest key is forgotten: its next line may get through early,
 * which is harmless, while the memory stays bounded.
 */
const MAX_KEYS = 10_000;

interface KeyState {
  bucket: TokenBucket;
  suppressed: number;
  /** When the first suppressed line since the last one written came (ms). */
  since: number;
}

export class LogGate {
  readonly #perMinute: number;
  readonly #now: () => number;
  readonly #keys = new Map<string, KeyState>();
  readonly #onSuppressed: () => void;

  /** onSuppressed counts each line left out (a metric). */
  constructor(linesPerMinute: number, onSuppressed: () => void = () => {}, now: () => number = Date.now) {
    this.#perMinute = linesPerMinute;
    this.#onSuppressed = onSuppressed;
    this.#now = now;
  }

  /** log.warn(fields, msg) unless `key` has used its lines; then the line is counted. */
  warn(key: string, log: Logger, fields: Record<string, unknown>, msg: string): void {
    const k = this.#state(key);
    if (!k.bucket.takeWhole().ok) {
      if (k.suppressed === 0) k.since = this.#now();
      k.suppressed++;
      this.#onSuppressed();
      return;
    }
    if (k.suppressed === 0) return log.warn(fields, msg);
    log.warn({ ...fields, suppressed: k.suppressed }, `${msg} (${this.#summary(k)})`);
    k.suppressed = 0;
  }

  /** Writes what `key` had suppressed, if anything and if its budget allows (a stream ended). */
  flush(key: string, log: Logger): void {
    const k = this.#keys.get(key);
    if (k === undefined || k.suppressed === 0 || !k.bucket.takeWhole().ok) return;
    log.warn({ suppressed: k.suppressed }, this.#summary(k));
    k.suppressed = 0;
  }

  #summary(k: KeyState): string {
    const seconds = Math.max(1, Math.round((this.#now() - k.since) / 1000));
    return `${k.suppressed} similar lines suppressed in the last ${seconds} s`;
  }

  #state(key: string): KeyState {
    let k = this.#keys.get(key);
    if (k === undefined) {
      if (this.#keys.size >= MAX_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
      k = { bucket: new TokenBucket(this.#perMinute / 60, 60, this.#now), suppressed: 0, since: 0 };
      this.#keys.set(key, k);
    }
    return k;
  }
}
