import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConcurrencyLimit } from "./concurrency-limit.ts";
import { fnv1a32, phaseOffsetMs, runJitterMs } from "./phase.ts";
import { TokenBucket } from "./token-bucket.ts";
import { fakeTimersClock } from "./testing.ts";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("TokenBucket", () => {
  it("hands out the burst at once, then one token per 1/rate seconds, in order", async () => {
    const bucket = new TokenBucket(2, 2, fakeTimersClock);
    const times: number[] = [];
    const order: number[] = [];
    const takes = Array.from({ length: 6 }, (_, i) =>
      bucket.take().then((ok) => {
        expect(ok).toBe(true);
        times.push(Date.now());
        order.push(i);
      }),
    );
    await vi.advanceTimersByTimeAsync(5_000);
    await Promise.all(takes);
    expect(times).toEqual([0, 0, 500, 1000, 1500, 2000]);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("gives up waiting when the signal aborts", async () => {
    const bucket = new TokenBucket(1, 1, fakeTimersClock);
    expect(await bucket.take()).toBe(true);
    const ctl = new AbortController();
    const waiting = bucket.take(ctl.signal);
    await vi.advanceTimersByTimeAsync(100);
    ctl.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(await waiting).toBe(false);
  });

  it("rejects nonsense limits", () => {
    expect(() => new TokenBucket(0, 1, fakeTimersClock)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 0, fakeTimersClock)).toThrow(RangeError);
  });
});

describe("ConcurrencyLimit", () => {
  it("admits max holders, queues the rest FIFO, and passes a released slot on", async () => {
    const limit = new ConcurrencyLimit(2);
    const a = await limit.acquire();
    const b = await limit.acquire();
    const granted: string[] = [];
    const c = limit.acquire().then((r) => (granted.push("c"), r));
    const d = limit.acquire().then((r) => (granted.push("d"), r));
    await Promise.resolve();
    expect(limit.active).toBe(2);
    expect(limit.waiting).toBe(2);
    a!();
    a!(); // a second release of the same slot is ignored
    const rc = await c;
    expect(granted).toEqual(["c"]);
    expect(limit.active).toBe(2);
    b!();
    const rd = await d;
    expect(granted).toEqual(["c", "d"]);
    rc!();
    rd!();
    expect(limit.active).toBe(0);
  });

  it("drops an aborted waiter from the queue", async () => {
    const limit = new ConcurrencyLimit(1);
    const a = await limit.acquire();
    const ctl = new AbortController();
    const waiting = limit.acquire(ctl.signal);
    ctl.abort();
    expect(await waiting).toBeNull();
    expect(limit.waiting).toBe(0);
    a!();
    expect(limit.active).toBe(0);
    expect(() => new ConcurrencyLimit(0)).toThrow(RangeError);
  });
});

describe("phase", () => {
  it("is stable, inside the interval, and differs by seed", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    const p = phaseOffsetMs("agent-1", "10.0.0.5|corp|finance|.", 60_000);
    expect(p).toBe(phaseOffsetMs("agent-1", "10.0.0.5|corp|finance|.", 60_000));
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(60_000);
    expect(phaseOffsetMs("agent-2", "10.0.0.5|corp|finance|.", 60_000)).not.toBe(p);
  });

  it("caps per-run jitter at 2 % of the interval and at 1 s", () => {
    expect(runJitterMs(10_000, () => 0.999)).toBe(199);
    expect(runJitterMs(3_600_000, () => 0.999)).toBe(999);
    expect(runJitterMs(10_000, () => 0)).toBe(0);
  });
});
