// How many targets one agent may bring. Each new target is a targets row and
// ~110-230 metric series that live until it goes stale, so an agent that
// declares ever-new targets could grow both without bound (review: 10,000
// targets broke /metrics for every site). Per agent, in this process:
//
// * at most `maxPerAgent` distinct targets, ever. Results for more are
//   quarantined with the reason (the agent hears INVALID_ARGUMENT and drops
//   them: resending cannot help). Known targets are never forgotten while the
//   process runs, so staleness cannot be used to rotate through new ones.
// * at most `newPerMinute` new ones a minute (that many at once) among those
//   first seen in results. A batch bringing more is refused for now and
//   resent by the agent (nothing lost). The targets an agent lists in Hello
//   (its configuration) are admitted at once, up to the cap: otherwise every
//   agent with more than a minute's worth would be throttled for minutes
//   after each aggregator restart, since the counts start afresh
//   (bench/fleet's 10 agents × 1,000 targets met exactly that).
//
// Like the results rate limit, this lives in the process: each replica and
// each restart counts afresh, which bounds what one agent adds per process
// lifetime rather than forever (the targets table has no owner column).
import { createHash } from "node:crypto";
import { TokenBucket } from "./rate-limit.ts";

export type TargetVerdict =
  | { ok: true }
  | { ok: false; limit: "max_targets_per_agent"; reason: string }
  | { ok: false; limit: "new_targets_per_minute"; retryAfterMs: number; what: string };

interface AgentTargets {
  known: Set<string>;
  bucket: TokenBucket;
}

/** A target key as remembered: names are up to 255 bytes each, a digest is 44. */
function remembered(key: string): string {
  return key.length <= 64 ? key : createHash("sha256").update(key).digest("base64");
}

export class TargetQuota {
  readonly #maxPerAgent: number;
  readonly #newPerMinute: number;
  readonly #now: () => number;
  readonly #agents = new Map<string, AgentTargets>();

  constructor(maxPerAgent: number, newPerMinute: number, now: () => number = Date.now) {
    this.#maxPerAgent = maxPerAgent;
    this.#newPerMinute = newPerMinute;
    this.#now = now;
  }

  /**
   * May `agent` report the target with identity `key` (site + target key)?
   * A new one is counted; `announced` (listed in Hello) skips the rate, not the cap.
   */
  admit(agent: string, key: string, announced = false): TargetVerdict {
    let a = this.#agents.get(agent);
    if (a === undefined) {
      a = { known: new Set(), bucket: new TokenBucket(this.#newPerMinute / 60, 60, this.#now) };
      this.#agents.set(agent, a);
    }
    const k = remembered(key);
    if (a.known.has(k)) return { ok: true };
    if (a.known.size >= this.#maxPerAgent) {
      return {
        ok: false,
        limit: "max_targets_per_agent",
        reason: `agent ${agent} already has ${this.#maxPerAgent} distinct targets ([limits] max_targets_per_agent)`,
      };
    }
    const taken = announced ? ({ ok: true } as const) : a.bucket.takeWhole();
    if (!taken.ok) {
      return {
        ok: false,
        limit: "new_targets_per_minute",
        retryAfterMs: taken.retryAfterMs,
        what: `new targets over ${this.#newPerMinute} a minute ([limits] new_targets_per_minute)`,
      };
    }
    a.known.add(k);
    return { ok: true };
  }
}
