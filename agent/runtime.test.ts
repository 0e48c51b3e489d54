import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../shared/logger.ts";
import type { ProbeResult } from "../shared/result.ts";
import type { Check } from "./checks/types.ts";
import { startAgentRuntime, type AgentRuntime, type RuntimeComponent } from "./runtime.ts";
import { fakeAgentConfig, fakeResult, fakeTarget } from "./scheduler/testing.ts";

let runtime: AgentRuntime | undefined;
afterEach(async () => {
  await runtime?.stop();
  runtime = undefined;
});

const instantCheck: Check = { kind: "fake", run: (t) => Promise.resolve(fakeResult(t)) };

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("agent runtime", () => {
  it("serves metrics of real runs, turns ready after the first runs, and closes in order", async () => {
    const events: string[] = [];
    const received: ProbeResult[] = [];
    const component: RuntimeComponent = {
      name: "buffer",
      sink: (r) => received.push(r),
      readiness: { name: "buffer", check: () => Promise.resolve(null) },
      close: () => {
        events.push("buffer closed");
        return Promise.resolve();
      },
    };
    const config = fakeAgentConfig([
      fakeTarget({ name: "a", share: "a", intervalSeconds: 1 }),
      fakeTarget({ name: "b", share: "b", intervalSeconds: 1 }),
    ]);
    const check: Check = {
      kind: "fake",
      run: (t, signal) => {
        events.push(`run ${t.name}`);
        return new Promise((resolve) => {
          const timer = setTimeout(() => resolve(fakeResult(t)), 20);
          signal.addEventListener("abort", () => {
            clearTimeout(timer);
            resolve(fakeResult(t, { healthy: false }));
          });
        });
      },
    };
    runtime = await startAgentRuntime({
      config,
      check,
      logger: silentLogger(),
      version: "9.9.9",
      components: [() => Promise.resolve(component), () => Promise.resolve(null)],
    });
    const base = `http://127.0.0.1:${runtime.http.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toContain('smb_service_state{address="127.0.0.1",share="a",domain="CORP",site="paris"} 0');
    expect(text).toContain('smbfleet_agent_info{site="paris",agent_id="paris-01",version="9.9.9"} 1');
    expect(text).toContain("process_cpu_user_seconds_total");
    expect(received.map((r) => r.target.name).sort()).toEqual(expect.arrayContaining(["a", "b"]));

    await runtime.stop();
    events.push("stopped");
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    const runsBefore = events.filter((e) => e.startsWith("run")).length;
    await new Promise((r) => setTimeout(r, 1_200));
    expect(events.filter((e) => e.startsWith("run")).length).toBe(runsBefore);
    expect(events.slice(-2)).toEqual(["buffer closed", "stopped"]);
  });

  it("is not ready before the first runs, and refuses a busy port after closing what started", async () => {
    const config = fakeAgentConfig([fakeTarget({ intervalSeconds: 3600 })]);
    runtime = await startAgentRuntime({ config, check: instantCheck, logger: silentLogger(), version: "0" });
    const res = await fetch(`http://127.0.0.1:${runtime.http.port}/readyz`);
    // The phase offset puts the first run somewhere in the hour.
    expect(res.status).toBe(503);
    expect(await res.text()).toContain("first-runs: waiting for the first run of every target");

    let closed = false;
    const busy = fakeAgentConfig([fakeTarget()], {
      httpListen: { host: "127.0.0.1", port: runtime.http.port },
    });
    await expect(
      startAgentRuntime({
        config: busy,
        check: instantCheck,
        logger: silentLogger(),
        version: "0",
        components: [
          () =>
            Promise.resolve({
              name: "x",
              close: () => {
                closed = true;
                return Promise.resolve();
              },
            }),
        ],
      }),
    ).rejects.toThrow(/EADDRINUSE/);
    expect(closed).toBe(true);
  });
});
