import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ProbeTarget } from "../../shared/config/types.ts";
import { silentLogger } from "../../shared/logger.ts";
import type { ProbeResult } from "../../shared/result.ts";
import type { Check } from "../checks/types.ts";
import { phaseOffsetMs } from "./phase.ts";
import { Scheduler, type SchedulerOptions } from "./scheduler.ts";
import { fakeResult, fakeTarget, fakeTimersClock } from "./testing.ts";
import { targetKey } from "../../shared/result.ts";
import { targetRefOf } from "../../shared/config/target-ref.ts";

interface Start {
  name: string;
  at: number;
  signal: AbortSignal;
}

/** A check that takes `durationMs(target)` of fake time and honours abort. */
function timedCheck(durationMs: (t: ProbeTarget) => number) {
  const starts: Start[] = [];
  const active = new Map<string, number>();
  let maxActive = 0;
  let maxPerTarget = 0;
  const check: Check = {
    kind: "fake",
    run(target, signal) {
      starts.push({ name: target.name, at: Date.now(), signal });
      active.set(target.name, (active.get(target.name) ?? 0) + 1);
      const total = [...active.values()].reduce((a, b) => a + b, 0);
      maxActive = Math.max(maxActive, total);
      maxPerTarget = Math.max(maxPerTarget, active.get(target.name)!);
      const started = Date.now();
      return new Promise<ProbeResult>((resolve) => {
        const done = (failed: boolean): void => {
          active.set(target.name, active.get(target.name)! - 1);
          resolve(
            fakeResult(target, {
              startedAtMs: started,
              durationMs: Date.now() - started,
              ...(failed ? { healthy: false, failureClass: "timeout", failureMessage: "aborted" } : {}),
            }),
          );
        };
        const timer = setTimeout(() => done(false), durationMs(target));
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          done(true);
        });
      });
    },
  };
  return {
    check,
    starts,
    get maxActive() {
      return maxActive;
    },
    get maxPerTarget() {
      return maxPerTarget;
    },
  };
}

let scheduler: Scheduler | undefined;

function startScheduler(opts: Partial<SchedulerOptions> & Pick<SchedulerOptions, "check" | "targets">) {
  const results: ProbeResult[] = [];
  scheduler = new Scheduler({
    sinks: [(r) => results.push(r)],
    maxConcurrentRuns: 100,
    maxSpawnsPerSecond: 1000,
    logger: silentLogger(),
    clock: fakeTimersClock,
    random: () => 0,
    phaseSeed: "test-agent",
    ...opts,
  });
  scheduler.start();
  return { scheduler, results };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
});

afterEach(async () => {
  const s = scheduler;
  scheduler = undefined;
  if (s !== undefined) {
    const stopped = s.stop();
    await vi.runOnlyPendingTimersAsync();
    await stopped;
  }
  vi.useRealTimers();
});

function phaseOf(t: ProbeTarget): number {
  return phaseOffsetMs("test-agent", targetKey(targetRefOf(t)), t.intervalSeconds * 1000);
}

describe("Scheduler", () => {
  it("starts runs at a fixed rate from a stable phase, whatever each run takes", async () => {
    const t = fakeTarget({ intervalSeconds: 10, timeoutSeconds: 9 });
    // Runs of varying length (1 s, 7 s, 3 s, ...) must not move the next start.
    const lengths = [1000, 7000, 3000, 6000, 2000, 8000];
    let i = 0;
    const fake = timedCheck(() => lengths[i++ % lengths.length]!);
    const t0 = Date.now();
    const { results } = startScheduler({ check: fake.check, targets: [t] });
    await vi.advanceTimersByTimeAsync(65_000);

    const phase = phaseOf(t);
    expect(phase).toBeGreaterThanOrEqual(0);
    expect(phase).toBeLessThan(10_000);
    const offsets = fake.starts.map((s) => s.at - t0);
    const expected = [0, 1, 2, 3, 4, 5, 6].map((k) => phase + k * 10_000).filter((x) => x <= 65_000);
    expect(offsets).toEqual(expected);
    expect(results.length).toBeGreaterThanOrEqual(expected.length - 1);
    expect(scheduler!.stats().get(targetKey(targetRefOf(t)))!.missedRuns).toBe(0);
  });

  it("spreads targets over the interval and keeps a per-run jitter below its cap", async () => {
    const targets = Array.from({ length: 20 }, (_, n) =>
      fakeTarget({ name: `t${n}`, share: `share${n}`, intervalSeconds: 60 }),
    );
    const phases = targets.map(phaseOf);
    expect(new Set(phases).size).toBe(20);
    expect(Math.max(...phases) - Math.min(...phases)).toBeGreaterThan(30_000);

    const t = fakeTarget({ intervalSeconds: 10 });
    const fake = timedCheck(() => 100);
    const t0 = Date.now();
    startScheduler({ check: fake.check, targets: [t], random: () => 0.999 });
    await vi.advanceTimersByTimeAsync(40_000);
    // 2 % of 10 s = 200 ms at most, measured from each slot (not accumulating).
    for (const [k, s] of fake.starts.entries()) {
      const slot = t0 + phaseOf(t) + k * 10_000;
      expect(s.at - slot).toBeGreaterThanOrEqual(0);
      expect(s.at - slot).toBeLessThan(200);
    }
    expect(fake.starts.length).toBeGreaterThanOrEqual(3);
  });

  it("never runs one target twice at once: an overrun skips slots and counts them", async () => {
    const t = fakeTarget({ intervalSeconds: 10, timeoutSeconds: 60 });
    const fake = timedCheck(() => 25_000);
    const t0 = Date.now();
    startScheduler({ check: fake.check, targets: [t] });
    await vi.advanceTimersByTimeAsync(100_000);

    expect(fake.maxPerTarget).toBe(1);
    const phase = phaseOf(t);
    // Run k ends at start+25 s: slots +10 and +20 are missed, the next is +30.
    expect(fake.starts.map((s) => s.at - t0)).toEqual(
      [phase, phase + 30_000, phase + 60_000, phase + 90_000].filter((x) => x <= 100_000),
    );
    const stats = scheduler!.stats().get(targetKey(targetRefOf(t)))!;
    expect(stats.missedRuns).toBe(2 * (fake.starts.length - 1));
  });

  it("holds the global concurrency cap and still runs every target", async () => {
    const targets = Array.from({ length: 6 }, (_, n) =>
      fakeTarget({ name: `t${n}`, share: `s${n}`, intervalSeconds: 1, timeoutSeconds: 60 }),
    );
    const fake = timedCheck(() => 2_000);
    const lags: number[] = [];
    startScheduler({
      check: fake.check,
      targets,
      maxConcurrentRuns: 2,
      observer: { runStarted: (_t, lag) => lags.push(lag) },
    });
    await vi.advanceTimersByTimeAsync(20_000);

    expect(fake.maxActive).toBe(2);
    expect(new Set(fake.starts.map((s) => s.name)).size).toBe(6);
    // Waiting for a slot shows up as schedule lag.
    expect(Math.max(...lags)).toBeGreaterThan(1_000);
    expect(scheduler!.allTargetsRan()).toBe(true);
  });

  it("limits how fast runs start (spawn rate)", async () => {
    const targets = Array.from({ length: 30 }, (_, n) =>
      fakeTarget({ name: `t${n}`, share: `s${n}`, intervalSeconds: 1, timeoutSeconds: 60 }),
    );
    const fake = timedCheck(() => 10);
    const t0 = Date.now();
    startScheduler({ check: fake.check, targets, maxSpawnsPerSecond: 4 });
    await vi.advanceTimersByTimeAsync(10_000);

    // Without the limit 30 targets × 1/s would start ~300 runs in 10 s.
    // With 4/s and a burst of 4: at most 4 + 4·10.
    expect(fake.starts.length).toBeLessThanOrEqual(44);
    expect(fake.starts.length).toBeGreaterThanOrEqual(38);
    // In no one-second window do more than burst + rate runs start.
    for (const s of fake.starts) {
      const inWindow = fake.starts.filter((o) => o.at >= s.at && o.at < s.at + 1000).length;
      expect(inWindow).toBeLessThanOrEqual(8);
    }
    expect(fake.starts[0]!.at - t0).toBeLessThan(1000);
  });

  it("turns a throwing or rejecting check into an internal result and keeps every loop going", async () => {
    const good = fakeTarget({ name: "good", share: "good", intervalSeconds: 5 });
    const throws = fakeTarget({ name: "throws", share: "throws", intervalSeconds: 5 });
    const rejects = fakeTarget({ name: "rejects", share: "rejects", intervalSeconds: 5 });
    const check: Check = {
      kind: "fake",
      run(target) {
        if (target.name === "throws") throw new TypeError("boom in check");
        if (target.name === "rejects") return Promise.reject(new Error("rejected in check"));
        return Promise.resolve(fakeResult(target));
      },
    };
    let sinkCalls = 0;
    const collected: ProbeResult[] = [];
    const { scheduler: s } = startScheduler({
      check,
      targets: [good, throws, rejects],
      // A failing sink must not stop the sinks after it, or any loop.
      sinks: [
        () => {
          sinkCalls += 1;
          throw new Error("sink down");
        },
        (r) => collected.push(r),
      ],
    });
    await vi.advanceTimersByTimeAsync(31_000);

    const byName = (n: string) => collected.filter((r) => r.target.name === n);
    expect(byName("good").length).toBeGreaterThanOrEqual(6);
    expect(byName("throws").length).toBeGreaterThanOrEqual(6);
    expect(byName("rejects").length).toBeGreaterThanOrEqual(6);
    for (const r of byName("throws")) {
      expect(r).toMatchObject({ failureClass: "internal", failureMessage: "boom in check", healthy: false });
    }
    expect(byName("rejects")[0]).toMatchObject({
      failureClass: "internal",
      failureMessage: "rejected in check",
    });
    expect(byName("good").every((r) => r.healthy)).toBe(true);
    expect(sinkCalls).toBe(collected.length);
    expect(s.allTargetsRan()).toBe(true);
  });

  it("aborts runs in flight on stop, drops their results and starts no more", async () => {
    const targets = [fakeTarget({ name: "a", share: "a", intervalSeconds: 1, timeoutSeconds: 600 })];
    const fake = timedCheck(() => 300_000);
    const { results, scheduler: s } = startScheduler({ check: fake.check, targets });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(fake.starts).toHaveLength(1);
    expect(s.inFlight).toBe(1);

    const stopped = s.stop();
    await vi.advanceTimersByTimeAsync(0);
    await stopped;
    scheduler = undefined;
    expect(fake.starts[0]!.signal.aborted).toBe(true);
    expect(s.inFlight).toBe(0);
    expect(results).toEqual([]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fake.starts).toHaveLength(1);
  });

  it("stops when the start signal aborts", async () => {
    const fake = timedCheck(() => 100);
    const ctl = new AbortController();
    scheduler = new Scheduler({
      check: fake.check,
      targets: [fakeTarget({ intervalSeconds: 1 })],
      sinks: [],
      maxConcurrentRuns: 1,
      maxSpawnsPerSecond: 10,
      logger: silentLogger(),
      clock: fakeTimersClock,
    });
    scheduler.start(ctl.signal);
    await vi.advanceTimersByTimeAsync(3_000);
    const before = fake.starts.length;
    expect(before).toBeGreaterThanOrEqual(2);
    ctl.abort();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(fake.starts.length).toBe(before);
  });

  it("aborts a run that outlives its timeout and reports a run that will not stop", async () => {
    const t = fakeTarget({ name: "hung", intervalSeconds: 10, timeoutSeconds: 5 });
    const signals: AbortSignal[] = [];
    let finish: (() => void) | undefined;
    const check: Check = {
      kind: "fake",
      run(target, signal) {
        signals.push(signal);
        // Ignores its signal: the bug the watchdog exists for.
        return new Promise((resolve) => {
          finish = () => resolve(fakeResult(target));
        });
      },
    };
    const missed: number[] = [];
    const { results } = startScheduler({
      check,
      targets: [t],
      limits: { watchdogGraceMs: 1_000, stuckReportMs: 2_000 },
      observer: { runsMissed: (_t, n) => missed.push(n) },
    });
    await vi.advanceTimersByTimeAsync(phaseOf(t) + 5_000 + 1_000 + 10);
    expect(signals).toHaveLength(1);
    expect(signals[0]!.aborted).toBe(true);
    expect(results).toEqual([]);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ failureClass: "internal", healthy: false });
    expect(results[0]!.failureMessage).toMatch(/did not stop 2000 ms after being aborted/);

    // Still stuck 40 s later: no second run of the same target was started.
    await vi.advanceTimersByTimeAsync(40_000);
    expect(signals).toHaveLength(1);
    finish!();
    await vi.advanceTimersByTimeAsync(10_000);
    // The late result is dropped, the skipped slots are counted, the loop goes on.
    expect(results.filter((r) => r.failureClass === null).length).toBeLessThanOrEqual(1);
    expect(missed.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(4);
    expect(signals.length).toBeGreaterThanOrEqual(2);
  });
});
