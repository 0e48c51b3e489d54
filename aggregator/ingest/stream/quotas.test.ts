import { pino } from "pino";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { LogGate } from "./log-gate.ts";
import { AgentQuotas, DEFAULT_INGEST_LIMITS } from "./quotas.ts";
import { TargetQuota } from "./target-quota.ts";

/** A pino logger whose lines land in `lines`, parsed. */
function captured(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString("utf8").split("\n")) if (l !== "") lines.push(JSON.parse(l) as never);
      done();
    },
  });
  return { log: pino({ level: "info" }, sink), lines };
}

describe("AgentQuotas", () => {
  it("counts streams per agent and refuses past the maximum until one closes", () => {
    const q = new AgentQuotas({ ...DEFAULT_INGEST_LIMITS, maxStreamsPerAgent: 2 });
    expect([q.openStream("a"), q.openStream("a"), q.openStream("a")]).toEqual([true, true, false]);
    expect(q.openStream("b")).toBe(true);
    q.closeStream("a");
    expect(q.streamsOf("a")).toBe(1);
    expect(q.openStream("a")).toBe(true);
  });

  it("limits each message kind on its own bucket, per agent", () => {
    let now = 0;
    const q = new AgentQuotas(
      { ...DEFAULT_INGEST_LIMITS, hellosPerMinute: 2, heartbeatsPerMinute: 3, batchesPerSecond: 1 },
      {},
      () => now,
    );
    const take = (agent: string, kind: "hello" | "heartbeat" | "batch", n: number) =>
      Array.from({ length: n }, () => q.message(agent, kind).ok);
    expect(take("a", "hello", 3)).toEqual([true, true, false]);
    expect(take("a", "heartbeat", 4)).toEqual([true, true, true, false]);
    expect(take("a", "batch", 3)).toEqual([true, true, false]); // 2 s of burst
    expect(q.message("a", "hello")).toMatchObject({
      ok: false,
      limit: "hellos_per_minute",
      retryAfterMs: 30_000,
    });
    expect(take("b", "hello", 1)).toEqual([true]);
    now = 30_000;
    expect(take("a", "hello", 2)).toEqual([true, false]);
  });
});

describe("TargetQuota", () => {
  it("admits known targets always, new ones up to the rate, and none past the cap", () => {
    let now = 0;
    const q = new TargetQuota(5, 3, () => now);
    const admit = (keys: string[]) => keys.map((k) => q.admit("a", k).ok);
    expect(admit(["t1", "t2", "t3", "t4"])).toEqual([true, true, true, false]);
    expect(q.admit("a", "t4")).toEqual({
      ok: false,
      limit: "new_targets_per_minute",
      retryAfterMs: 20_000,
      what: "new targets over 3 a minute ([limits] new_targets_per_minute)",
    });
    expect(admit(["t1", "t2", "t3"])).toEqual([true, true, true]); // known: free
    now = 60_000;
    expect(admit(["t4", "t5", "t6"])).toEqual([true, true, false]);
    expect(q.admit("a", "t6")).toEqual({
      ok: false,
      limit: "max_targets_per_agent",
      reason: "agent a already has 5 distinct targets ([limits] max_targets_per_agent)",
    });
    expect(q.admit("b", "t6").ok).toBe(true); // per agent
    // Long keys are remembered by digest, and still recognised.
    const long = "x".repeat(1000);
    expect(q.admit("b", long).ok).toBe(true);
    expect(q.admit("b", long).ok).toBe(true);
  });

  it("admits the targets Hello lists at once, up to the cap but not past it", () => {
    const q = new TargetQuota(5, 1, () => 0);
    const announce = (keys: string[]) => keys.map((k) => q.admit("a", k, true).ok);
    expect(announce(["t1", "t2", "t3", "t4", "t5", "t6"])).toEqual([true, true, true, true, true, false]);
    // The rate still holds for targets first seen in results.
    const q2 = new TargetQuota(5, 1, () => 0);
    expect(["t1", "t2", "t3"].map((k) => q2.admit("a", k, true).ok)).toEqual([true, true, true]);
    expect(q2.admit("a", "t4").ok).toBe(true);
    expect(q2.admit("a", "t5")).toMatchObject({ ok: false, limit: "new_targets_per_minute" });
  });
});

describe("LogGate", () => {
  it("lets a few lines through per key and then says how many it suppressed", () => {
    let now = 0;
    let counted = 0;
    const gate = new LogGate(
      3,
      () => counted++,
      () => now,
    );
    const { log, lines } = captured();
    for (let i = 0; i < 1000; i++) gate.warn("a", log, { i }, "bad input");
    gate.warn("b", log, {}, "other agent");
    expect(lines.map((l) => l["msg"])).toEqual(["bad input", "bad input", "bad input", "other agent"]);
    expect(counted).toBe(997);
    now = 20_000; // one line's worth refilled
    gate.warn("a", log, { i: 1000 }, "bad input");
    expect(lines.at(-1)).toMatchObject({
      msg: "bad input (997 similar lines suppressed in the last 20 s)",
      suppressed: 997,
      i: 1000,
    });
    // flush writes only what is left, and only within the budget.
    gate.warn("a", log, {}, "bad input");
    gate.flush("a", log);
    expect(lines.length).toBe(5);
    now = 40_000;
    gate.flush("a", log);
    expect(lines.at(-1)).toMatchObject({ msg: "1 similar lines suppressed in the last 20 s", suppressed: 1 });
    gate.flush("a", log);
    expect(lines.length).toBe(6);
  });
});
