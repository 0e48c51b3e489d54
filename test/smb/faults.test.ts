// Hangs, slow servers, cut links, aborts and crashed runs: every one ends the
// run with the right class, kills smbclient, and leaves no process behind;
// what a crashed run left on the share is removed by a later run.
// Issue 2, acceptance 2 ("accepts TCP and never answers") and the stale-files rule.
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSmbCheck } from "../../agent/checks/smb/check.ts";
import { ownRunStart, runNames } from "../../agent/checks/smb/names.ts";
import type { ProbeResult } from "../../shared/result.ts";
import { startDelayProxy, type DelayProxy } from "../harness/delay-proxy.ts";
import { smbclientProcesses } from "../harness/ports.ts";
import { chownToUser, startSamba, type SambaServer } from "../harness/samba.ts";
import { makeTarget } from "../harness/targets.ts";
import { until } from "../harness/wait.ts";

const AGENT = "itest-faults";
/** smbclient's own connect timeout (FACTS.md): what a run would take if our timers did not fire. */
const SMBCLIENT_CONNECT_TIMEOUT_MS = 20_000;
/**
 * SMB round trips of a whole healthy run (login 7, 5 × write 3, ls_dir 7,
 * 5 × read 4, 5 × unlink 6: test/smb/latency.test.ts counts them on the
 * wire): through the proxy at D ms each way it lasts at least 79 · 2·D.
 */
const RUN_ROUND_TRIPS = 79;
const check = createSmbCheck({ agentId: AGENT });
let samba: SambaServer;
let proxy: DelayProxy;

beforeAll(async () => {
  samba = await startSamba();
});

afterAll(async () => {
  await samba?.stop();
});

beforeEach(async () => {
  // Runs that these tests kill leave files behind on purpose; each test starts from an empty share.
  for (const name of readdirSync(samba.sharePaths.writable)) {
    rmSync(join(samba.sharePaths.writable, name), { recursive: true, force: true });
  }
  proxy = await startDelayProxy({ target: { host: samba.host, port: samba.port } });
});

afterEach(async () => {
  await proxy.stop();
  expect(smbclientProcesses(proxy.port)).toEqual([]);
  expect(smbclientProcesses(samba.port)).toEqual([]);
});

function viaProxy(overrides: Parameters<typeof makeTarget>[1] = {}) {
  return makeTarget({ ...samba, port: proxy.port }, overrides);
}

function counts(r: ProbeResult): Record<string, [number, number]> {
  return Object.fromEntries(r.operations.map((o) => [o.operation, [o.samplesMs.length, o.failures]]));
}

function ourFiles(): string[] {
  return readdirSync(samba.sharePaths.writable).filter((n) => ownRunStart(AGENT, n) !== null);
}

/** Polls often: the run being watched moves on within tens of milliseconds. */
const POLL = { pollMs: 2, timeoutMs: 20_000 };

describe("timeouts", () => {
  it("a server that accepts TCP and never answers → timeout; smbclient is killed and nothing is left running", async () => {
    proxy.setMode("blackhole");
    const r = await check.run(
      viaProxy({ operationTimeoutSeconds: 1, timeoutSeconds: 30 }),
      new AbortController().signal,
    );
    expect(r.failureClass).toBe("timeout");
    expect(r.failureMessage).toBe("login: no answer within 1 s; smbclient killed");
    expect(counts(r)).toEqual({ login: [0, 1] });
    expect(proxy.connectionsAccepted).toBe(1);
    // Our 1 s timer, then SIGTERM; nowhere near smbclient's own connect timeout.
    expect(r.durationMs).toBeLessThan(SMBCLIENT_CONNECT_TIMEOUT_MS / 2);
    // The killed smbclient's TCP connection is closed too.
    await until("the killed smbclient's connection to close", () => proxy.connectionsOpen === 0, POLL);
  });

  it("a server that hangs mid-session → the running operation times out", async () => {
    proxy.setDelay(20);
    const running = check.run(
      viaProxy({ operationTimeoutSeconds: 1, timeoutSeconds: 30 }),
      new AbortController().signal,
    );
    await until("the run's first file on the share", () => ourFiles().length >= 1, POLL);
    proxy.freeze();
    const r = await running;
    expect(r.failureClass).toBe("timeout");
    expect(r.failureMessage).toMatch(/^write: no answer within 1 s; smbclient killed$/);
    // The first file appears on disk at its SMB CREATE, so the hang hits the first write.
    expect(counts(r)).toEqual({ login: [1, 0], write: [0, 1] });
  });

  it("a run longer than its run timeout is killed at the run timeout", async () => {
    // Login is 7 round trips: ~2.8 s at 200 ms each way, against a 1 s run timeout.
    proxy.setDelay(200);
    const operationTimeoutSeconds = 10;
    const r = await check.run(
      viaProxy({ operationTimeoutSeconds, timeoutSeconds: 1 }),
      new AbortController().signal,
    );
    expect(r.failureClass).toBe("timeout");
    expect(r.failureMessage).toBe("login: run timeout of 1 s reached; smbclient killed");
    // Killed by the run timeout, well before the operation timeout would have acted.
    expect(r.durationMs).toBeLessThan((operationTimeoutSeconds * 1000) / 2);
  });
});

describe("links and aborts", () => {
  it("a link cut mid-session → unreachable, with smbclient's words kept", async () => {
    proxy.setDelay(20);
    const running = check.run(viaProxy(), new AbortController().signal);
    await until("the run's first file on the share", () => ourFiles().length >= 1, POLL);
    proxy.cut();
    const r = await running;
    expect(r.failureClass).toBe("unreachable");
    expect(r.failureMessage).toMatch(/NT_STATUS_CONNECTION_(RESET|DISCONNECTED)/);
    expect(r.healthy).toBe(false);
  });

  it("the abort signal kills the run and it resolves soon", async () => {
    const delayMs = 50;
    proxy.setDelay(delayMs);
    const ac = new AbortController();
    const running = check.run(viaProxy(), ac.signal);
    // Mid-session: smbclient is running and talking to the server through the proxy.
    await until(
      "smbclient connected through the proxy",
      () => smbclientProcesses(proxy.port).length > 0 && proxy.bytesFromClients > 0,
      POLL,
    );
    const abortedAt = performance.now();
    ac.abort(new Error("shutdown"));
    const r = await running;
    const resolvedIn = performance.now() - abortedAt;
    expect(r.failureClass).toBe("internal");
    expect(r.failureMessage).toContain("aborted");
    expect(r.healthy).toBe(false);
    // SIGTERM, and SIGKILL 200 ms later at worst: not the rest of the run, which
    // would take most of RUN_ROUND_TRIPS · 2·D; bounded loosely for a busy machine.
    expect(resolvedIn).toBeLessThan((RUN_ROUND_TRIPS * 2 * delayMs) / 2);
  });

  it("an already aborted signal starts nothing that outlives the run", async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await check.run(viaProxy(), ac.signal);
    expect(r.failureClass).toBe("internal");
    expect(r.failureMessage).toContain("aborted");
  });
});

describe("stale files", () => {
  it("a crashed run's files are removed by a later run, once that run cannot still be alive", async () => {
    // Somebody else's files, and another agent's stale probe file, must survive.
    const person = join(samba.sharePaths.writable, "quarterly.xlsx");
    const otherAgent = join(samba.sharePaths.writable, runNames("other-agent", 1_000).file(0));
    for (const f of [person, otherAgent]) {
      writeFileSync(f, "keep");
      chownToUser(f, samba.users[0]!.name);
    }

    // Crash a run in its write phase: abort it once its first file is on the share.
    proxy.setDelay(20);
    const runTimeoutSeconds = 2;
    const ac = new AbortController();
    const crashed = check.run(viaProxy({ timeoutSeconds: runTimeoutSeconds }), ac.signal);
    await until("the run's first file on the share", () => ourFiles().length >= 1, POLL);
    ac.abort();
    expect((await crashed).failureMessage).toContain("aborted");
    const left = ourFiles();
    expect(left.length).toBeGreaterThanOrEqual(1);
    const crashedStamp = ownRunStart(AGENT, left[0]!)!;

    // At once, the crashed run could still be alive (as far as a later run knows): its files stay.
    const early = await check.run(
      makeTarget(samba, { timeoutSeconds: runTimeoutSeconds }),
      new AbortController().signal,
    );
    expect(early.healthy).toBe(true);
    expect(ourFiles()).toEqual(left);

    // Once its run timeout has passed, the next run removes them.
    await until(
      "the crashed run's timeout to pass",
      () => Date.now() > crashedStamp + runTimeoutSeconds * 1000 + 50,
      { pollMs: 20, timeoutMs: 10_000 },
    );
    const later = await check.run(
      makeTarget(samba, { timeoutSeconds: runTimeoutSeconds }),
      new AbortController().signal,
    );
    expect(later.healthy).toBe(true);
    expect(ourFiles()).toEqual([]);
    expect(readdirSync(samba.sharePaths.writable).sort()).toEqual(
      [runNames("other-agent", 1_000).file(0), "quarterly.xlsx"].sort(),
    );
  });
});
