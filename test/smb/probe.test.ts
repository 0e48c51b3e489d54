// The SMB probe engine against a real smbd on loopback: what each kind of
// target (healthy, wrong password, missing share, read-only, closed port,
// missing basedir, Kerberos, protocol floor) reports. Issue 2, acceptance 2.
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createSmbCheck } from "../../agent/checks/smb/check.ts";
import { runNames } from "../../agent/checks/smb/names.ts";
import type { Operation, ProbeResult } from "../../shared/result.ts";
import { reservePort, smbclientProcesses } from "../harness/ports.ts";
import { chownToUser, startSamba, type SambaServer } from "../harness/samba.ts";
import { makeTarget } from "../harness/targets.ts";

const AGENT = "itest-probe";
const check = createSmbCheck({ agentId: AGENT });
let samba: SambaServer;

beforeAll(async () => {
  samba = await startSamba();
});

afterAll(async () => {
  await samba?.stop();
});

afterEach(() => {
  // run() resolves only after its smbclient is gone, whatever happened.
  expect(smbclientProcesses(samba.port)).toEqual([]);
});

function run(overrides: Parameters<typeof makeTarget>[1] = {}): Promise<ProbeResult> {
  return check.run(makeTarget(samba, overrides), new AbortController().signal);
}

function counts(r: ProbeResult): Record<string, [samples: number, failures: number]> {
  return Object.fromEntries(r.operations.map((o) => [o.operation, [o.samplesMs.length, o.failures]]));
}

function ourFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith(`.smbfleet-probe-${AGENT}-`));
}

describe("a healthy share", () => {
  it("gets a sample for every operation, passes integrity, and leaves nothing behind", async () => {
    const r = await run({ rename: true, mkdir: true });
    expect(r.failureMessage).toBeNull();
    expect(r.failureClass).toBeNull();
    expect(r.healthy).toBe(true);
    expect(r.aboveThreshold).toEqual([]);
    const expected: Record<Operation, [number, number]> = {
      login: [1, 0],
      write: [5, 0],
      ls_dir: [1, 0],
      read: [5, 0],
      integrity: [5, 0],
      rename: [5, 0],
      unlink: [5, 0],
      mkdir: [1, 0],
      rmdir: [1, 0],
    };
    expect(counts(r)).toEqual(expected);
    for (const op of r.operations) for (const ms of op.samplesMs) expect(ms).toBeGreaterThan(0);
    expect(r.target).toMatchObject({
      address: samba.host,
      port: samba.port,
      share: "writable",
      basedir: ".",
    });
    expect(r.durationMs).toBeGreaterThan(0);
    expect(Math.abs(r.startedAtMs - Date.now())).toBeLessThan(60_000);
    expect(readdirSync(samba.sharePaths.writable)).toEqual([]);
  });

  it("runs exactly smbprobe's operations (plus integrity) when rename and mkdir are off", async () => {
    const r = await run({ fileCount: 3, fileSizeBytes: 100_000 });
    expect(r.healthy).toBe(true);
    expect(counts(r)).toEqual({
      login: [1, 0],
      write: [3, 0],
      ls_dir: [1, 0],
      read: [3, 0],
      integrity: [3, 0],
      unlink: [3, 0],
    });
  });

  it("logs in with a password holding spaces and %", async () => {
    const user = samba.users[0]!;
    expect(user.password).toMatch(/ /);
    expect(user.password).toMatch(/%/);
    const r = await run({ username: user.name, password: user.password });
    expect(r.failureMessage).toBeNull();
    expect(r.healthy).toBe(true);
  });

  it("logs in as the second user with a plain password", async () => {
    const user = samba.users[1]!;
    const r = await run({ username: user.name, password: user.password });
    expect(r.healthy).toBe(true);
  });

  it("works in remote_basedir, and its stale-file cleanup stays there", async () => {
    const basedir = join(samba.sharePaths.writable, "probe dir");
    mkdirSync(basedir);
    chownToUser(basedir, samba.users[0]!.name);
    // An old file of ours in the share root: if ls_dir listed the root, it would be removed.
    const rootStale = join(samba.sharePaths.writable, runNames(AGENT, 1_000).file(0));
    writeFileSync(rootStale, "old");
    chownToUser(rootStale, samba.users[0]!.name);
    const r = await run({ remoteBasedir: "probe dir" });
    expect(r.failureMessage).toBeNull();
    expect(r.healthy).toBe(true);
    expect(r.target.basedir).toBe("probe dir");
    expect(readdirSync(basedir)).toEqual([]);
    expect(ourFiles(samba.sharePaths.writable)).toEqual([runNames(AGENT, 1_000).file(0)]);
  });
});

describe("failures are classified", () => {
  it("wrong password → auth; nothing after login is attempted", async () => {
    const r = await run({ password: "not the password" });
    expect(r.failureClass).toBe("auth");
    expect(r.failureMessage).toBe("session setup failed: NT_STATUS_LOGON_FAILURE");
    expect(r.healthy).toBe(false);
    expect(counts(r)).toEqual({ login: [0, 1] });
  });

  it("missing share → share_not_found", async () => {
    const r = await run({ share: samba.shares.missing });
    expect(r.failureClass).toBe("share_not_found");
    expect(r.failureMessage).toContain("NT_STATUS_BAD_NETWORK_NAME");
    expect(counts(r)).toEqual({ login: [0, 1] });
  });

  it("read-only share → every write fails with access_denied, nothing is read, the run is unhealthy", async () => {
    const r = await run({ share: samba.shares.readonly });
    expect(r.failureClass).toBe("access_denied");
    expect(r.failureMessage).toMatch(/^NT_STATUS_ACCESS_DENIED opening remote file /);
    expect(r.healthy).toBe(false);
    expect(counts(r)).toEqual({ login: [1, 0], write: [0, 5], ls_dir: [1, 0] });
    expect(readdirSync(samba.sharePaths.readonly)).toEqual(["README.txt"]);
  });

  it("closed port → unreachable, quickly", async () => {
    // Reserved, so no other process on the machine can start listening on it meanwhile.
    const closed = await reservePort();
    const operationTimeoutSeconds = 10;
    const r = await run({ port: closed.port, operationTimeoutSeconds }).finally(() => closed.release());
    expect(r.failureClass).toBe("unreachable");
    expect(r.failureMessage).toContain("NT_STATUS_CONNECTION_REFUSED");
    expect(counts(r)).toEqual({ login: [0, 1] });
    // Refused at once (~40 ms here, smbclient's start-up), not found out by the
    // operation timeout: only that is asserted, so a busy machine cannot fail it.
    expect(r.durationMs).toBeLessThan((operationTimeoutSeconds * 1000) / 2);
  });

  it("missing remote_basedir → not_found, charged to ls_dir, nothing written", async () => {
    const r = await run({ remoteBasedir: "no such dir" });
    expect(r.failureClass).toBe("not_found");
    expect(r.failureMessage).toContain("NT_STATUS_OBJECT_NAME_NOT_FOUND");
    expect(counts(r)).toEqual({ login: [1, 0], ls_dir: [0, 1] });
  });

  it('auth = "kerberos" requires Kerberos: without a KDC it is an auth failure, not a silent NTLM login', async () => {
    const r = await run({ auth: "kerberos" });
    expect(r.failureClass).toBe("auth");
    expect(r.failureMessage).toContain("Kerberos");
    expect(counts(r)).toEqual({ login: [0, 1] });
  });

  it("a protocol floor above what the server speaks → protocol", async () => {
    const old = await startSamba({ globalOptions: ["server max protocol = SMB2_10"] });
    try {
      const r = await check.run(makeTarget(old, { protocol: "SMB3" }), new AbortController().signal);
      expect(r.failureClass).toBe("protocol");
      expect(r.failureMessage).toBe("protocol negotiation failed: NT_STATUS_NOT_SUPPORTED");
      // The same server is fine without the floor.
      const ok = await check.run(makeTarget(old), new AbortController().signal);
      expect(ok.healthy).toBe(true);
    } finally {
      await old.stop();
    }
  });

  it("smbclient or stdbuf missing → internal, with the reason", async () => {
    const target = makeTarget(samba);
    const noSmbclient = await createSmbCheck({ agentId: AGENT, smbclientPath: "/nonexistent/smbclient" }).run(
      target,
      new AbortController().signal,
    );
    expect(noSmbclient.failureClass).toBe("internal");
    expect(noSmbclient.failureMessage).toContain("/nonexistent/smbclient");
    const noStdbuf = await createSmbCheck({ agentId: AGENT, stdbufPath: "/nonexistent/stdbuf" }).run(
      target,
      new AbortController().signal,
    );
    expect(noStdbuf.failureClass).toBe("internal");
    expect(noStdbuf.failureMessage).toContain("could not start /nonexistent/stdbuf");
    expect(counts(noStdbuf)).toEqual({ login: [0, 1] });
  });

  it("a local temp dir that cannot be used → internal, and run() still resolves", async () => {
    const r = await createSmbCheck({ agentId: AGENT, tmpDir: "/nonexistent/tmp" }).run(
      makeTarget(samba),
      new AbortController().signal,
    );
    expect(r.failureClass).toBe("internal");
    expect(r.failureMessage).toContain("ENOENT");
  });

  it("a median above its threshold makes a run without failures unhealthy", async () => {
    const base = makeTarget(samba);
    const r = await run({ latencyThresholdsMs: { ...base.latencyThresholdsMs, login: 0.001 } });
    expect(r.failureClass).toBeNull();
    expect(r.aboveThreshold).toEqual(["login"]);
    expect(r.healthy).toBe(false);
  });
});
