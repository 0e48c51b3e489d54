// `make demo` end to end (DEMO_ONCE=1): Samba up, agent up, a healthy and an
// unhealthy target summarised from /metrics, everything stopped afterwards.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("make demo", () => {
  it("shows a healthy and an unhealthy target with per-op latencies, then cleans up", () => {
    const r = spawnSync(process.execPath, ["scripts/demo.ts"], {
      encoding: "utf8",
      env: { ...process.env, DEMO_ONCE: "1" },
      timeout: 100_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("//writable: healthy");
    expect(r.stdout).toContain("//readonly: UNHEALTHY (access_denied)");
    for (const op of ["login", "write", "ls_dir", "read", "unlink"]) {
      expect(r.stdout).toMatch(new RegExp(`\\n {4}${op} +[15] +\\d+\\.\\d\\d +\\d+\\.\\d\\d +0\\n`));
    }
    expect(r.stdout).toMatch(/metrics: http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(r.stderr).toContain("demo: agent stopped (exit 0)");
    expect(r.stderr).toContain("demo: Samba stopped, temp files removed");
  });
});
