// `node main.ts probe --config F [--json]` against real Samba: a readable
// table, JSON results, and exit 0 only when every target is healthy.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProbeResult } from "../../shared/result.ts";
import { writeDemoConfig } from "../../scripts/demo-config.ts";
import { startSamba, type SambaServer } from "../harness/samba.ts";
import { smbclientsFor } from "./processes.ts";

let samba: SambaServer;
let dir: string;

beforeAll(async () => {
  samba = await startSamba();
  dir = mkdtempSync(join(tmpdir(), "smbfleet-probe-test-"));
  // Two targets on one share need their own remote_basedir (else they are duplicates).
  for (const sub of ["second", "third"]) {
    mkdirSync(join(samba.sharePaths.writable, sub));
    chmodSync(join(samba.sharePaths.writable, sub), 0o777);
  }
});

afterAll(async () => {
  await samba?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function probe(configDir: string, ...args: string[]) {
  return spawnSync(
    process.execPath,
    ["main.ts", "probe", "--config", join(configDir, "agent.toml"), ...args],
    {
      encoding: "utf8",
      timeout: 60_000,
    },
  );
}

function configIn(name: string, targets: Parameters<typeof writeDemoConfig>[2]["targets"]): string {
  const sub = mkdtempSync(join(dir, `${name}-`));
  writeDemoConfig(samba, sub, { targets });
  return sub;
}

describe("smbfleet probe", () => {
  it("prints a table per target and exits 0 when all are healthy", () => {
    const d = configIn("healthy", [
      { name: "rw-spaces", share: "writable", interval: 60 },
      { name: "rw-plain", share: "writable", interval: 60, user: 1, basedir: "second" },
    ]);
    const r = probe(d, "--once");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^rw-spaces {2}//127\\.0\\.0\\.1:${samba.port}/writable {2}\\(\\d+ ms\\)\\n`),
    );
    expect(r.stdout).toMatch(/\n {2}op +samples {2}median ms {2}p95 ms {2}failures\n/);
    for (const op of ["login", "write", "ls_dir", "read", "unlink"]) {
      expect(r.stdout).toMatch(new RegExp(`\\n {2}${op} +(1|5) +\\d+\\.\\d\\d +\\d+\\.\\d\\d +0\\n`));
    }
    expect(r.stdout).toContain("  status: healthy\n");
    expect(r.stdout.endsWith("2 targets: 2 healthy, 0 UNHEALTHY\n")).toBe(true);
    expect(smbclientsFor(samba.port)).toEqual([]);
  });

  it("prints JSON results and exits 1 when a target is unhealthy", () => {
    const d = configIn("mixed", [
      { name: "rw", share: "writable", interval: 60 },
      { name: "ro", share: "readonly", interval: 60 },
      { name: "wrong-password", share: "writable", interval: 60, password: "not it", basedir: "third" },
    ]);
    const r = probe(d, "--json");
    expect(r.status).toBe(1);
    const results = JSON.parse(r.stdout) as ProbeResult[];
    expect(results.map((x) => x.target.name)).toEqual(["rw", "ro", "wrong-password"]);
    expect(results[0]).toMatchObject({ healthy: true, failureClass: null });
    expect(results[1]).toMatchObject({ healthy: false, failureClass: "access_denied" });
    expect(results[2]).toMatchObject({ healthy: false, failureClass: "auth" });
    const writes = results[0]!.operations.find((o) => o.operation === "write");
    expect(writes?.samplesMs).toHaveLength(5);
    expect(r.stdout).not.toContain(samba.users[0]!.password);

    const table = probe(d);
    expect(table.status).toBe(1);
    expect(table.stdout).toMatch(/\n {2}status: UNHEALTHY: access_denied: NT_STATUS_ACCESS_DENIED/);
    expect(table.stdout).toMatch(/\n {2}status: UNHEALTHY: auth: .*NT_STATUS_LOGON_FAILURE/);
    expect(table.stdout).toContain("3 targets: 1 healthy, 2 UNHEALTHY");
  });

  it("exits 2 on a bad command line or config", () => {
    const usage = spawnSync(process.execPath, ["main.ts", "probe", "--bogus"], { encoding: "utf8" });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain("usage: smbfleet probe");
    const missing = probe(join(dir, "nope"));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(join(dir, "nope", "agent.toml"));
  });
});
