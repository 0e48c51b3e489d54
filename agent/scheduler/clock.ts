// The scheduler's sense of time, injected so that tests drive it with fake
// timers instead of waiting. Schedules use a monotonic clock: a wall-clock
// step (NTP, a VM resumed) must not make a target fire twice or go silent.
import { sleep } from "../../shared/backoff.ts";

export interface Clock {
  /** Monotonic milliseconds; only differences are meaningful. */
  now(): number;
  /** Wall-clock Unix epoch milliseconds, for the timestamps results carry. */
  wallNow(): number;
  /** Resolves true after ms, or false as soon as the signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<boolean>;
}

/**
 * The real clock. Each call reads the global at call time, so vitest's fake
 * timers (which replace performance, Date and setTimeout) also drive it.
 */
export const realClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  sleep: (ms, signal) => sleep(Math.max(0, ms), signal),
};
