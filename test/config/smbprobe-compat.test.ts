// smbprobe's own files, read in place from ../shared/smbprobe-testdata (never
// copied into the repo), load as agent configs as its README says.
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { loadAgentConfig, readAgentConfig } from "../../shared/config/agent.ts";
import { ConfigError, formatProblem } from "../../shared/config/problems.ts";
import type { AgentConfig } from "../../shared/config/types.ts";

const REPO = join(import.meta.dirname, "../..");
const DATA = relative(process.cwd(), join(REPO, "../shared/smbprobe-testdata"));
const ENV = { PASSWORD_PROBE1: "first secret", PASSWORD_PROBE2: "second%secret" };

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "smbfleet-config-"));
  temps.push(dir);
  return dir;
}

function identities(config: AgentConfig): unknown[] {
  return config.probes.map((p) => [p.name, p.address, p.domain, p.share, p.remoteBasedir, p.intervalSeconds]);
}

const GOOD_TARGETS = [
  ["10.2.2.23/smb01", "10.2.2.23", "racktoplabs.com", "smb01", ".", 5],
  ["10.2.2.123/smb02", "10.2.2.123", "racktoplabs.com", "smb02", ".", 5],
];

describe("smbprobe compatibility", () => {
  it.each([
    ["test_good1.toml", [1, 10]],
    ["test_good3.toml", [1, 11]],
  ])("%s yields its two targets, $ENV_ passwords resolved", (name, lines) => {
    const config = loadAgentConfig(join(DATA, name), ENV);
    expect(identities(config)).toEqual(GOOD_TARGETS);
    expect(config.probes.map((p) => [p.username, p.password.reveal()])).toEqual([
      ["probeuser", "first secret"],
      ["probeuser", "second%secret"],
    ]);
    expect(config.probes.map((p) => p.line)).toEqual(lines);
    expect(config.aggregator).toBeNull();
  });

  it("test_good1 has no warnings; test_good3 exactly one, about [[notifications]]", () => {
    expect(loadAgentConfig(join(DATA, "test_good1.toml"), ENV).warnings).toEqual([]);
    const file = join(DATA, "test_good3.toml");
    const { warnings } = loadAgentConfig(file, ENV);
    expect(warnings.map(formatProblem)).toEqual([
      `${file}:21: notifications: warning: [[notifications]] belong in the notifier's config (notifier.toml) and are ignored here`,
    ]);
  });

  it("a $ENV_ variable that is not set is an error naming file, line, key and variable", () => {
    const file = join(DATA, "test_good1.toml");
    const result = readAgentConfig(file, { PASSWORD_PROBE2: "x" });
    expect(result.config).toBeNull();
    expect(result.problems.map(formatProblem)).toEqual([
      `${file}:6: probes[0].password: environment variable PASSWORD_PROBE1 is not set ("$ENV_PASSWORD_PROBE1" reads it)`,
    ]);
  });

  it("test_bad1.toml fails naming line 1", () => {
    const file = join(DATA, "test_bad1.toml");
    expect(() => loadAgentConfig(file, ENV)).toThrow(ConfigError);
    const { problems } = readAgentConfig(file, ENV);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file, line: 1, severity: "error" });
    expect(formatProblem(problems[0]!)).toBe(
      `${file}:1: (syntax): invalid TOML: expected end of table array declaration (column 10)`,
    );
  });

  it("probe.toml.example loads with a .secrets.toml beside it", () => {
    const dir = tempDir();
    const file = join(dir, "probe.toml");
    copyFileSync(join(DATA, "probe.toml.example"), file);
    writeFileSync(join(dir, ".secrets.toml"), '[secrets.users]\nprobeuser1 = "one"\nprobeuser2 = "two"\n', {
      mode: 0o600,
    });
    const config = loadAgentConfig(file, {});
    expect(identities(config)).toEqual([
      ["192.168.100.1/smb01", "192.168.100.1", "corp.example.com", "smb01", ".", 5],
      ["192.168.100.2/smb02", "192.168.100.2", "corp.example.com", "smb02", ".", 5],
    ]);
    expect(config.probes.map((p) => p.password.reveal())).toEqual(["one", "two"]);
    expect(config.warnings.map((w) => w.key)).toEqual(["notifications"]);
  });

  it("probe.toml.example loads with the secrets file(s) named by SECRETS_FOR_DYNACONF", () => {
    const dir = tempDir();
    const file = join(dir, "probe.toml");
    copyFileSync(join(DATA, "probe.toml.example"), file);
    const first = join(dir, "first.toml");
    const second = join(dir, "second.toml");
    writeFileSync(first, '[secrets.users]\nprobeuser1 = "one"\nprobeuser2 = "overridden"\n', { mode: 0o600 });
    writeFileSync(second, '[secrets.users]\nprobeuser2 = "two"\n', { mode: 0o600 });

    const one = loadAgentConfig(file, { SECRETS_FOR_DYNACONF: first });
    expect(one.probes.map((p) => p.password.reveal())).toEqual(["one", "overridden"]);
    // A list: every file is read and, as dynaconf merges them, the later one wins.
    const both = loadAgentConfig(file, { SECRETS_FOR_DYNACONF: `${first}, ${second}` });
    expect(both.probes.map((p) => p.password.reveal())).toEqual(["one", "two"]);

    const missing = join(dir, "nope.toml");
    const result = readAgentConfig(file, { SECRETS_FOR_DYNACONF: `${second},${missing}` });
    expect(result.problems.filter((p) => p.severity === "error").map(formatProblem)).toEqual([
      `${file}:7: probes[0].password: secret secrets.users.probeuser1 not found in ${second}; ${missing} does not exist`,
    ]);
  });

  it("a secrets file readable by group or others draws a warning naming it", () => {
    const dir = tempDir();
    const file = join(dir, "probe.toml");
    copyFileSync(join(DATA, "probe.toml.example"), file);
    const secrets = join(dir, ".secrets.toml");
    writeFileSync(secrets, '[secrets.users]\nprobeuser1 = "one"\nprobeuser2 = "two"\n');
    chmodSync(secrets, 0o644);
    const config = loadAgentConfig(file, {});
    expect(config.warnings.map(formatProblem)).toEqual([
      `${file}:21: notifications: warning: [[notifications]] belong in the notifier's config (notifier.toml) and are ignored here`,
      `${secrets}:0: (file): warning: readable by group or others (mode 0644) but holds passwords: chmod 600`,
    ]);
    chmodSync(secrets, 0o600);
    expect(loadAgentConfig(file, {}).warnings.map((w) => w.file)).toEqual([file]);
  });

  it("an empty password falls back to SMB_MONITOR_PROBE_PASSWORD, as smbprobe does", () => {
    const dir = tempDir();
    const file = join(dir, "probe.toml");
    writeFileSync(
      file,
      '[[probes]]\nname = ""\naddress = "10.0.0.1"\nshare = "s"\nusername = "u"\npassword = ""\n',
    );
    expect(
      loadAgentConfig(file, { SMB_MONITOR_PROBE_PASSWORD: "fallback" }).probes[0]?.password.reveal(),
    ).toBe("fallback");
    expect(readAgentConfig(file, {}).problems.map(formatProblem)).toEqual([
      `${file}:6: probes[0].password: required (or set SMB_MONITOR_PROBE_PASSWORD, or auth = "kerberos")`,
    ]);
  });
});

describe("secrets never leak", () => {
  it("a loaded config prints no password through JSON.stringify or util.inspect", () => {
    const config = loadAgentConfig(join(DATA, "test_good3.toml"), ENV);
    for (const text of [
      JSON.stringify(config),
      inspect(config, { depth: Infinity }),
      String(config.probes[0]?.password),
    ]) {
      expect(text).not.toContain("first secret");
      expect(text).not.toContain("second%secret");
      expect(text).toContain("<redacted>");
    }
  });

  it("a password of the wrong type is not echoed in the message", () => {
    const dir = tempDir();
    const file = join(dir, "probe.toml");
    writeFileSync(
      file,
      '[[probes]]\naddress = "10.0.0.1"\nshare = "s"\nusername = "u"\npassword = 98765432\n',
    );
    const { problems } = readAgentConfig(file, {});
    expect(problems.map(formatProblem)).toEqual([
      `${file}:5: probes[0].password: expected a string, got an integer`,
    ]);
  });
});
