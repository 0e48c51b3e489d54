// Every target once, now, under the same concurrency cap and spawn limit as
// the scheduler (`smbfleet probe`, the benchmarks). Results come back in the
// targets' order; a check that throws yields an "internal" result as in the loop.
import type { ProbeTarget } from "../../shared/config/types.ts";
import type { Logger } from "../../shared/logger.ts";
import type { ProbeResult } from "../../shared/result.ts";
import type { Check } from "../checks/types.ts";
import { realClock, type Clock } from "./clock.ts";
import { ConcurrencyLimit } from "./concurrency-limit.ts";
import { internalResult } from "./internal-result.ts";
import { spawnBurst } from "./options.ts";
import { TokenBucket } from "./token-bucket.ts";

export interface RunOnceOptions {
  maxConcurrentRuns: number;
  maxSpawnsPerSecond: number;
  logger: Logger;
  signal?: AbortSignal;
  clock?: Clock;
}

/** Resolves with one result per target, or null for a target that never started because the signal aborted. */
export async function runAllOnce(
  check: Check,
  targets: readonly ProbeTarget[],
  opts: RunOnceOptions,
): Promise<Array<ProbeResult | null>> {
  const clock = opts.clock ?? realClock;
  const cap = new ConcurrencyLimit(opts.maxConcurrentRuns);
  const spawns = new TokenBucket(opts.maxSpawnsPerSecond, spawnBurst(opts.maxSpawnsPerSecond), clock);
  const signal = opts.signal ?? new AbortController().signal;
  return Promise.all(
    targets.map(async (target) => {
      const release = await cap.acquire(signal);
      if (release === null) return null;
      try {
        if (!(await spawns.take(signal))) return null;
        const startedWall = clock.wallNow();
        const started = clock.now();
        try {
          return await check.run(target, signal);
        } catch (err) {
          opts.logger.error({ err, target: target.name }, "check threw; reporting an internal failure");
          return internalResult(target, startedWall, clock.now() - started, err);
        }
      } finally {
        release();
      }
    }),
  );
}
