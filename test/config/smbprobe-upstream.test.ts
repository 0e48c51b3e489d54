// smbprobe's own data files, when a copy sits beside the clone in
// ../shared/smbprobe-testdata (never copied into the repo). A clone without it
// skips this file; the project's fixtures (smbprobe-compat.test.ts) cover the
// same shapes either way.
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../../cli/run.ts";
import { loadAgentConfig, readAgentConfig } from "../../shared/config/agent.ts";
import { formatProblem } from "../../shared/config/problems.ts";
import type { CommandIo } from "../../shared/command-io.ts";

const UPSTREAM = relative(process.cwd(), join(import.meta.dirname, "../../../shared/smbprobe-testdata"));
const ENV = { PASSWORD_PROBE1: "first secret", PASSWORD_PROBE2: "second%secret" };
const NOTIFICATIONS_WARNING =
  "notifications: warning: [[notifications]] belong in the notifier's config (notifier.toml) and are ignored here";

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe.runIf(existsSync(UPSTREAM))("smbprobe's own files in ../shared/smbprobe-testdata", () => {
  it.each([
    ["test_good1.toml", [1, 10], []],
    ["test_good3.toml", [1, 11], [21]],
  ])("%s yields its two targets, lines %j, notifications warnings at %j", (name, lines, warningLines) => {
    const file = join(UPSTREAM, name);
    const config = loadAgentConfig(file, ENV);
    expect(config.probes.map((p) => [p.name, p.address, p.share, p.domain, p.remoteBasedir])).toEqual([
      ["10.2.2.23/smb01", "10.2.2.23", "smb01", "racktoplabs.com", "."],
      ["10.2.2.123/smb02", "10.2.2.123", "smb02", "racktoplabs.com", "."],
    ]);
    expect(config.probes.map((p) => p.password.reveal())).toEqual(["first secret", "second%secret"]);
    expect(config.probes.map((p) => p.line)).toEqual(lines);
    expect(config.warnings.map(formatProblem)).toEqual(
      warningLines.map((line) => `${file}:${line}: ${NOTIFICATIONS_WARNING}`),
    );
  });

  it("test_bad1.toml fails naming line 1", () => {
    const file = join(UPSTREAM, "test_bad1.toml");
    expect(readAgentConfig(file, ENV).problems.map(formatProblem)).toEqual([
      `${file}:1: (syntax): invalid TOML: expected end of table array declaration (column 10)`,
    ]);
  });

  it("probe.toml.example loads with a .secrets.toml beside it", () => {
    const dir = mkdtempSync(join(tmpdir(), "smbfleet-upstream-"));
    temps.push(dir);
    const file = join(dir, "probe.toml");
    copyFileSync(join(UPSTREAM, "probe.toml.example"), file);
    writeFileSync(join(dir, ".secrets.toml"), '[secrets.users]\nprobeuser1 = "one"\nprobeuser2 = "two"\n', {
      mode: 0o600,
    });
    const config = loadAgentConfig(file, {});
    expect(config.probes.map((p) => [p.address, p.share, p.password.reveal()])).toEqual([
      ["192.168.100.1", "smb01", "one"],
      ["192.168.100.2", "smb02", "two"],
    ]);
    expect(config.warnings.map(formatProblem)).toEqual([`${file}:21: ${NOTIFICATIONS_WARNING}`]);
  });

  it("check-config passes the good files and fails the bad one", async () => {
    const [good1, good3, bad1] = ["test_good1.toml", "test_good3.toml", "test_bad1.toml"].map((f) =>
      join(UPSTREAM, f),
    );
    let out = "";
    const io: CommandIo = { stdout: (t) => void (out += t), stderr: () => undefined };
    const code = await runCli(["check-config", good1!, good3!, bad1!], ENV, new AbortController().signal, io);
    expect(out.split("\n").filter((l) => l !== "")).toEqual([
      `${good1}: ok (agent config, 2 probes, 0 warnings)`,
      `${good3}:21: ${NOTIFICATIONS_WARNING}`,
      `${good3}: ok (agent config, 2 probes, 1 warning)`,
      `${bad1}:1: (syntax): invalid TOML: expected end of table array declaration (column 10)`,
      `${bad1}: 1 error`,
    ]);
    expect(code).toBe(1);
  });
});
