// The one way tests and the harness wait for something to become true:
//
//   await until("the backlog drained", () => buffer.backlog().count === 0);
//   const pid = await until("the COPY blocked on the lock", async () => (await blockedPid()) ?? null);
//
// Never a fixed sleep that hopes things have settled: a sleep is too short on
// a busy machine and wasted time on a quiet one. On timeout it throws, naming
// what it waited for and the last value it saw (or the last error thrown).
import { setTimeout as sleep } from "node:timers/promises";

/** Short: the things waited for are on loopback or in this process. */
const DEFAULT_POLL_MS = 20;
const DEFAULT_TIMEOUT_MS = 30_000;

export interface UntilOptions {
  timeoutMs?: number;
  pollMs?: number;
  /** More context for the timeout message (counters, logs), read when it is thrown. */
  detail?: () => unknown;
}

type Pending = false | null | undefined;

/**
 * Calls probe until it returns something other than false, null or
 * undefined, and resolves with that. A probe that throws counts as not yet
 * (a server still starting), and its error is what the timeout reports.
 */
export async function until<T>(
  what: string,
  probe: () => T | Pending | Promise<T | Pending>,
  options: UntilOptions | number = {},
): Promise<T> {
  const o = typeof options === "number" ? { timeoutMs: options } : options;
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await probe();
      if (last !== false && last !== null && last !== undefined) return last as T;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) {
      const detail = o.detail === undefined ? "" : `; ${describe(o.detail())}`;
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}: last saw ${describe(last)}${detail}`,
        {
          cause: last instanceof Error ? last : undefined,
        },
      );
    }
    await sleep(o.pollMs ?? DEFAULT_POLL_MS);
  }
}

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (typeof value === "string") return JSON.stringify(value);
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v)) ?? String(value);
  } catch {
    return String(value);
  }
}
