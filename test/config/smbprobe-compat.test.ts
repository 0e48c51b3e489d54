// smbprobe's config files load unchanged: the project's own fixtures in
// test/fixtures/smbprobe/ (smbprobe's shapes, written for smbfleet: see its
// README) as agent and notifier configs, every message compared whole.
// smbprobe's own files are checked too when they sit beside the clone
// (smbprobe-upstream.test.ts); nothing here needs them.
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { inspect } from "node:util";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadAgentConfig, readAgentConfig } from "../../shared/config/agent.ts";
import { loadNotifierConfig, readNotifierConfig } from "../../shared/config/notifier.ts";
import { ConfigError, formatProblem } from "../../shared/config/problems.ts";
import type { AgentConfig } from "../../shared/config/types.ts";

const DATA = relative(process.cwd(), join(import.meta.dirname, "../fixtures/smbprobe"));
const ENV = {
  SMBFLEET_FIXTURE_PW_HOME: "home secret",
  SMBFLEET_FIXTURE_PW_SCANS: "scans%secret",
  SMBFLEET_FIXTURE_PD_KEY: "pd-routing-key",
};
const NOTIFICATIONS_WARNING =
  "notifications: warning: [[notifications]] belong in the notifier's config (notifier.toml) and are ignored here";

beforeAll(() => {
  // git keeps no permission bits but the executable one; a group-readable
  // secrets file would draw its own warning into every case below.
  chmodSync(join(DATA, ".secrets.toml"), 0o600);
});

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

const ENV_TARGETS = [
  ["fs01.branch.smbfleet.test/home", "fs01.branch.smbfleet.test", "BRANCH", "home", ".", 15],
  ["fs02.branch.smbfleet.test/scans", "fs02.branch.smbfleet.test", "BRANCH", "scans", ".", 15],
];
const PROBE_TOML_TARGETS = [
  ["172.16.40.10/projects", "172.16.40.10", "ad.smbfleet.test", "projects", ".", 10],
  ["archive", "172.16.40.11", "ad.smbfleet.test", "archive", "probes/archive", 30],
];

describe("smbprobe's probe.toml shapes as agent configs", () => {
  it.each([
    ["env-passwords.toml", [1, 10]],
    ["env-passwords-notifications.toml", [1, 11]],
  ])("%s yields its two targets, $ENV_ passwords resolved", (name, lines) => {
    const config = loadAgentConfig(join(DATA, name), ENV);
    expect(identities(config)).toEqual(ENV_TARGETS);
    expect(config.probes.map((p) => [p.username, p.password.reveal()])).toEqual([
      ["svc-probe", "home secret"],
      ["svc-probe", "scans%secret"],
    ]);
    expect(config.probes.map((p) => p.line)).toEqual(lines);
    expect(config.aggregator).toBeNull();
  });

  it("env-passwords.toml has no warnings; with [[notifications]] (request-bin included) exactly one", () => {
    expect(loadAgentConfig(join(DATA, "env-passwords.toml"), ENV).warnings).toEqual([]);
    const file = join(DATA, "env-passwords-notifications.toml");
    const { warnings } = loadAgentConfig(file, ENV);
    expect(warnings.map(formatProblem)).toEqual([`${file}:21: ${NOTIFICATIONS_WARNING}`]);
  });

  it("a $ENV_ variable that is not set is an error naming file, line, key and variable", () => {
    const file = join(DATA, "env-passwords.toml");
    const result = readAgentConfig(file, { SMBFLEET_FIXTURE_PW_SCANS: "x" });
    expect(result.config).toBeNull();
    expect(result.problems.map(formatProblem)).toEqual([
      `${file}:6: probes[0].password: environment variable SMBFLEET_FIXTURE_PW_HOME is not set ("$ENV_SMBFLEET_FIXTURE_PW_HOME" reads it)`,
    ]);
  });

  it("bad-syntax.toml fails naming line 1", () => {
    const file = join(DATA, "bad-syntax.toml");
    expect(() => loadAgentConfig(file, ENV)).toThrow(ConfigError);
    const { problems } = readAgentConfig(file, ENV);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file, line: 1, severity: "error" });
    expect(formatProblem(problems[0]!)).toBe(
      `${file}:1: (syntax): invalid TOML: expected end of table array declaration (column 10)`,
    );
  });

  it("probe.toml loads with the .secrets.toml beside it; its [[notifications]] draw one warning", () => {
    const file = join(DATA, "probe.toml");
    const config = loadAgentConfig(file, {});
    expect(identities(config)).toEqual(PROBE_TOML_TARGETS);
    expect(config.probes.map((p) => [p.username, p.password.reveal()])).toEqual([
      ["monitor1", "projects pass 1"],
      ["monitor2", "archive%pass#2"],
    ]);
    expect(config.probes.map((p) => p.line)).toEqual([1, 11]);
    expect(config.warnings.map(formatProblem)).toEqual([`${file}:21: ${NOTIFICATIONS_WARNING}`]);
  });

  it("probe.toml loads with the secrets file(s) named by SECRETS_FOR_DYNACONF", () => {
    const file = join(DATA, "probe.toml");
    const dir = tempDir();
    const first = join(dir, "first.toml");
    const second = join(dir, "second.toml");
    writeFileSync(first, '[secrets.users]\nmonitor1 = "one"\nmonitor2 = "overridden"\n', { mode: 0o600 });
    writeFileSync(second, '[secrets.users]\nmonitor2 = "two"\n', { mode: 0o600 });

    const one = loadAgentConfig(file, { SECRETS_FOR_DYNACONF: first });
    expect(one.probes.map((p) => p.password.reveal())).toEqual(["one", "overridden"]);
    // A list: every file is read and, as dynaconf merges them, the later one wins.
    const both = loadAgentConfig(file, { SECRETS_FOR_DYNACONF: `${first}, ${second}` });
    expect(both.probes.map((p) => p.password.reveal())).toEqual(["one", "two"]);

    const missing = join(dir, "nope.toml");
    const result = readAgentConfig(file, { SECRETS_FOR_DYNACONF: `${second},${missing}` });
    expect(result.problems.filter((p) => p.severity === "error").map(formatProblem)).toEqual([
      `${file}:7: probes[0].password: secret secrets.users.monitor1 not found in ${second}; ${missing} does not exist`,
    ]);
  });

  it("a secrets file readable by group or others draws a warning naming it", () => {
    const dir = tempDir();
    const file = join(dir, "probe.toml");
    copyFileSync(join(DATA, "probe.toml"), file);
    const secrets = join(dir, ".secrets.toml");
    writeFileSync(secrets, '[secrets.users]\nmonitor1 = "one"\nmonitor2 = "two"\n');
    chmodSync(secrets, 0o644);
    const config = loadAgentConfig(file, {});
    expect(config.warnings.map(formatProblem)).toEqual([
      `${file}:21: ${NOTIFICATIONS_WARNING}`,
      `${secrets}:0: (file): warning: readable by group or others (mode 0644) but holds passwords: chmod 600`,
    ]);
    chmodSync(secrets, 0o600);
    expect(loadAgentConfig(file, {}).warnings.map((w) => w.file)).toEqual([file]);
  });

  it("bad-secret-missing.toml names the secret and the file it looked in", () => {
    const file = join(DATA, "bad-secret-missing.toml");
    expect(readAgentConfig(file, {}).problems.map(formatProblem)).toEqual([
      `${file}:7: probes[0].password: secret secrets.users.monitor3 not found in ${join(DATA, ".secrets.toml")}`,
    ]);
  });

  it("bad-format-reference.toml: an @format reference outside secrets is refused", () => {
    const file = join(DATA, "bad-format-reference.toml");
    expect(readAgentConfig(file, {}).problems.map(formatProblem)).toEqual([
      `${file}:5: probes[0].password: unsupported @format reference: use "@format {this.secrets.users.NAME}"`,
    ]);
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

describe("smbprobe's [[notifications]] in notifier.toml", () => {
  it("notifier.toml reads a block of every target kind, secrets from $ENV_ and .secrets.toml", () => {
    const file = join(DATA, "notifier.toml");
    const config = loadNotifierConfig(file, ENV);
    expect(config.warnings).toEqual([]);
    expect(config.redis.url.reveal()).toBe("redis://127.0.0.1:6379/3");
    expect(
      config.notifications.map((n) => [
        n.line,
        n.target,
        n.url,
        n.integrationKey?.reveal() ?? null,
        n.headers,
        n.severity,
      ]),
    ).toEqual([
      [4, "pager-duty", "https://events.pagerduty.com/v2/enqueue", "pd-routing-key", {}, "error"],
      [
        12,
        "better-stack",
        "https://uptime.betterstack.com/api/v2/incidents",
        null,
        { Authorization: "Bearer fixture-betterstack-token" },
        null,
      ],
      [
        17,
        "msft-teams",
        "https://smbfleet-test.webhook.office.com/webhookb2/fixture-channel",
        null,
        {},
        null,
      ],
      [
        21,
        "generic-post",
        "https://hooks.smbfleet.test/smb-incidents",
        null,
        { "x-team": "storage", "x-source": "smbprobe" },
        null,
      ],
      [26, "email", null, null, {}, null],
    ]);
    const [pagerDuty] = config.notifications;
    expect([pagerDuty?.sourceEmail, pagerDuty?.summary]).toEqual([
      "smb-monitor@smbfleet.test",
      "SMB share unhealthy",
    ]);
    const email = config.notifications[4]?.smtp;
    expect({ ...email, password: email?.password?.reveal() }).toEqual({
      host: "mail.smbfleet.test",
      port: 587,
      from: "smbfleet@smbfleet.test",
      to: ["storage-oncall@smbfleet.test"],
      username: "alerts",
      password: "smtp-secret",
      tls: true,
    });
  });

  it("bad-request-bin.toml: smbprobe's request-bin target is refused, naming the line", () => {
    const file = join(DATA, "bad-request-bin.toml");
    expect(readNotifierConfig(file, ENV).problems.map(formatProblem)).toEqual([
      `${file}:6: notifications[0].target: "request-bin" posts every alert to a third-party public service; use target = "generic-post" with a url of your own`,
    ]);
  });
});

describe("secrets never leak", () => {
  it("a loaded config prints no password through JSON.stringify or util.inspect", () => {
    const agent = loadAgentConfig(join(DATA, "env-passwords-notifications.toml"), ENV);
    const fromFile = loadAgentConfig(join(DATA, "probe.toml"), {});
    const notifier = loadNotifierConfig(join(DATA, "notifier.toml"), ENV);
    for (const text of [
      JSON.stringify(agent),
      inspect(agent, { depth: Infinity }),
      String(agent.probes[0]?.password),
      JSON.stringify(fromFile),
      inspect(fromFile, { depth: Infinity }),
      JSON.stringify(notifier),
      inspect(notifier, { depth: Infinity }),
    ]) {
      for (const secret of [
        "home secret",
        "scans%secret",
        "pd-routing-key",
        "projects pass 1",
        "archive%pass#2",
        "smtp-secret",
      ]) {
        expect(text).not.toContain(secret);
      }
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
