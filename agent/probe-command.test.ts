import { describe, expect, it } from "vitest";
import { silentLogger } from "../shared/logger.ts";
import type { ProbeResult } from "../shared/result.ts";
import type { Check } from "./checks/types.ts";
import { probeOnce } from "./probe-command.ts";
import { fakeAgentConfig, fakeResult, fakeTarget } from "./scheduler/testing.ts";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t) },
    get out() {
      return out.join("");
    },
    get err() {
      return err.join("");
    },
  };
}

const signal = new AbortController().signal;

describe("probeOnce", () => {
  it("prints a table per target and exits 0 when all are healthy", async () => {
    const config = fakeAgentConfig([
      fakeTarget({ name: "one", share: "one" }),
      fakeTarget({ name: "two", share: "two" }),
    ]);
    const check: Check = { kind: "fake", run: (t) => Promise.resolve(fakeResult(t)) };
    const c = capture();
    expect(await probeOnce(config, check, { json: false, signal, io: c.io, logger: silentLogger() })).toBe(0);
    expect(c.out).toMatch(/^one {2}\/\/127\.0\.0\.1:445\/one/);
    expect(c.out).toContain("\ntwo  //127.0.0.1:445/two");
    expect(c.out).toContain("2 targets: 2 healthy, 0 UNHEALTHY");
  });

  it("prints JSON results in config order, exits 1 when one is unhealthy, and respects the cap", async () => {
    const targets = ["a", "b", "c", "d", "e"].map((n) => fakeTarget({ name: n, share: n }));
    const config = fakeAgentConfig(targets, { maxConcurrentRuns: 2 });
    let active = 0;
    let maxActive = 0;
    const check: Check = {
      kind: "fake",
      async run(t) {
        active += 1;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 20 + (t.name === "a" ? 40 : 0)));
        active -= 1;
        if (t.name === "c") throw new Error("bug in check");
        return fakeResult(
          t,
          t.name === "d"
            ? { healthy: false, failureClass: "auth", failureMessage: "NT_STATUS_LOGON_FAILURE" }
            : {},
        );
      },
    };
    const c = capture();
    expect(await probeOnce(config, check, { json: true, signal, io: c.io, logger: silentLogger() })).toBe(1);
    const parsed = JSON.parse(c.out) as ProbeResult[];
    expect(parsed.map((r) => r.target.name)).toEqual(["a", "b", "c", "d", "e"]);
    expect(parsed[2]).toMatchObject({
      failureClass: "internal",
      failureMessage: "bug in check",
      healthy: false,
    });
    expect(parsed[3]).toMatchObject({ failureClass: "auth", healthy: false });
    expect(maxActive).toBe(2);
  });
});
