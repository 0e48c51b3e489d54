// `smbfleet check-config` through the real dispatcher, output captured:
// every problem on its own line, one verdict per file, exit 0/1/2.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../cli/run.ts";
import type { CommandIo } from "../../shared/command-io.ts";

const REPO = join(import.meta.dirname, "../..");
/** smbprobe's file shapes, the project's own fixtures (test/fixtures/smbprobe/README.md). */
const DATA = relative(process.cwd(), join(REPO, "test/fixtures/smbprobe"));
const ENV = {
  SMBFLEET_FIXTURE_PW_HOME: "a",
  SMBFLEET_FIXTURE_PW_SCANS: "b",
  SMBFLEET_FIXTURE_PD_KEY: "k",
};
const NOTIFICATIONS_WARNING =
  "notifications: warning: [[notifications]] belong in the notifier's config (notifier.toml) and are ignored here";

beforeAll(() => {
  // git keeps no permission bits but the executable one (see smbprobe-compat.test.ts).
  chmodSync(join(DATA, ".secrets.toml"), 0o600);
});

async function checkConfig(
  args: string[],
  env: NodeJS.ProcessEnv = ENV,
): Promise<{ code: number; out: string[]; err: string }> {
  let out = "";
  let err = "";
  const io: CommandIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t) };
  const code = await runCli(["check-config", ...args], env, new AbortController().signal, io);
  return { code, out: out.split("\n").filter((l) => l !== ""), err };
}

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("smbfleet check-config", () => {
  it("passes smbprobe-shaped good configs of both kinds, printing their warnings (exit 0)", async () => {
    const [env, withNotifications, probe, notifier] = [
      "env-passwords.toml",
      "env-passwords-notifications.toml",
      "probe.toml",
      "notifier.toml",
    ].map((f) => join(DATA, f));
    const { code, out, err } = await checkConfig([env!, withNotifications!, probe!, notifier!]);
    expect(out).toEqual([
      `${env}: ok (agent config, 2 probes, 0 warnings)`,
      `${withNotifications}:21: ${NOTIFICATIONS_WARNING}`,
      `${withNotifications}: ok (agent config, 2 probes, 1 warning)`,
      `${probe}:21: ${NOTIFICATIONS_WARNING}`,
      `${probe}: ok (agent config, 2 probes, 1 warning)`,
      `${notifier}: ok (notifier config, 5 notifications, 0 warnings)`,
    ]);
    expect(err).toBe("");
    expect(code).toBe(0);
  });

  it("lists every problem of every file and exits 1 when any file has errors", async () => {
    const good = join(DATA, "env-passwords.toml");
    const bad = join(DATA, "bad-syntax.toml");
    const secret = join(DATA, "bad-secret-missing.toml");
    const requestBin = join(DATA, "bad-request-bin.toml");
    const many = relative(
      process.cwd(),
      join(REPO, "test/fixtures/config/invalid/agent-missing-address-and-username.toml"),
    );
    const { code, out } = await checkConfig([bad, good, secret, requestBin, many]);
    expect(out).toEqual([
      `${bad}:1: (syntax): invalid TOML: expected end of table array declaration (column 10)`,
      `${bad}: 1 error`,
      `${good}: ok (agent config, 2 probes, 0 warnings)`,
      `${secret}:7: probes[0].password: secret secrets.users.monitor3 not found in ${join(DATA, ".secrets.toml")}`,
      `${secret}: 1 error`,
      `${requestBin}:6: notifications[0].target: "request-bin" posts every alert to a third-party public service; use target = "generic-post" with a url of your own`,
      `${requestBin}: 1 error`,
      `${many}:1: probes[0].address: required`,
      `${many}:1: probes[0].username: required`,
      `${many}: 2 errors`,
    ]);
    expect(code).toBe(1);
  });

  it("says which file is missing or of no known kind", async () => {
    const missing = join(DATA, "no-such.toml");
    const unknown = relative(process.cwd(), join(REPO, "test/fixtures/config/invalid/unknown-kind.toml"));
    const { code, out } = await checkConfig([missing, unknown]);
    expect(out).toEqual([
      `${missing}:0: (file): cannot read: no such file`,
      `${missing}: 1 error`,
      `${unknown}:0: (file): cannot tell which config this is: expected [[probes]] or [agent] (agent), ` +
        "[server] or [database] (aggregator), [[notifications]] or [redis] (notifier)",
      `${unknown}: 1 error`,
    ]);
    expect(code).toBe(1);
  });

  it("exits 2 on a usage error, 0 for --help", async () => {
    const none = await checkConfig([]);
    expect(none.code).toBe(2);
    expect(none.err).toContain("no file given");
    const bad = await checkConfig(["--strict", join(DATA, "env-passwords.toml")]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("unknown option '--strict'");
    expect(bad.out).toEqual([]);
    const help = await checkConfig(["--help"]);
    expect(help.code).toBe(0);
    expect(help.out[0]).toBe("usage: smbfleet check-config FILE...");
  });

  it("passes the example configs in config/, which set every key", async () => {
    // The examples name certificates and a secrets file relative to their
    // folder; give them those (empty placeholders: only existence is checked).
    const dir = mkdtempSync(join(tmpdir(), "smbfleet-examples-"));
    temps.push(dir);
    mkdirSync(join(dir, "certs"));
    for (const f of ["ca.pem", "server.pem", "server-key.pem", "paris-01.pem", "paris-01-key.pem"]) {
      writeFileSync(join(dir, "certs", f), "placeholder\n");
    }
    writeFileSync(join(dir, ".secrets.toml"), '[secrets.users]\nprobeuser = "pw"\n', { mode: 0o600 });
    const files = ["agent.toml", "aggregator.toml", "notifier.toml"].map((f) => {
      copyFileSync(join(REPO, "config", f), join(dir, f));
      return join(dir, f);
    });
    const env = { PROBE_HOME_PASSWORD: "pw", PAGERDUTY_KEY: "k", SMTP_PASSWORD: "s" };
    const { code, out } = await checkConfig(files, env);
    expect(out).toEqual([
      `${files[0]}: ok (agent config, 2 probes, 0 warnings)`,
      `${files[1]}: ok (aggregator config, 0 warnings)`,
      `${files[2]}: ok (notifier config, 5 notifications, 0 warnings)`,
    ]);
    expect(code).toBe(0);
  });
});
