import { describe, expect, it } from "vitest";
import { AgentRateLimits, TokenBucket } from "./rate-limit.ts";

describe("TokenBucket", () => {
  it("lets a burst through, refuses while in debt, and refills at the rate", () => {
    let now = 0;
    const bucket = new TokenBucket(100, 2, () => now); // capacity 200
    expect(bucket.take(150)).toEqual({ ok: true });
    expect(bucket.take(150)).toEqual({ ok: true }); // 50 left → -100: a large batch may borrow
    expect(bucket.take(1)).toEqual({ ok: false, retryAfterMs: 1000 });
    now = 500; // +50 → -50
    expect(bucket.take(1)).toEqual({ ok: false, retryAfterMs: 500 });
    now = 1000; // +50 → 0
    expect(bucket.take(10)).toEqual({ ok: true });
    now = 100_000; // refill caps at capacity (200), not 99 s × 100
    expect(bucket.take(201)).toEqual({ ok: true });
    expect(bucket.take(1)).toEqual({ ok: false, retryAfterMs: 10 });
  });
});

describe("TokenBucket.takeWhole", () => {
  it("lets exactly the capacity through at once, then one per refill", () => {
    let now = 0;
    const bucket = new TokenBucket(0.1, 60, () => now); // 6 a minute, 6 at once
    for (let i = 0; i < 6; i++) expect(bucket.takeWhole()).toEqual({ ok: true });
    expect(bucket.takeWhole()).toEqual({ ok: false, retryAfterMs: 10_000 });
    now = 9_000;
    expect(bucket.takeWhole()).toEqual({ ok: false, retryAfterMs: 1_000 });
    now = 10_000;
    expect(bucket.takeWhole()).toEqual({ ok: true });
    expect(bucket.takeWhole().ok).toBe(false);
  });
});

describe("AgentRateLimits", () => {
  it("keeps one bucket per agent", () => {
    const limits = new AgentRateLimits(10, () => 0); // capacity 20
    expect(limits.take("a", 25).ok).toBe(true);
    expect(limits.take("a", 1).ok).toBe(false);
    expect(limits.take("b", 1).ok).toBe(true);
  });
});
