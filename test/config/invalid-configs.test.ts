// Every invalid fixture against its exact messages, in the style of
// blackbox_exporter's TestLoadBadConfigs: one file per problem (a few with
// several), the whole list of problems compared, order included. {file} is
// the fixture as passed, {dir} its folder.
import { chmodSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadAgentConfig } from "../../shared/config/agent.ts";
import { loadAggregatorConfig } from "../../shared/config/aggregator.ts";
import { checkConfigFile } from "../../shared/config/check.ts";
import { loadNotifierConfig } from "../../shared/config/notifier.ts";
import { ConfigError, countErrors, formatProblem } from "../../shared/config/problems.ts";
import { isSmbfleetError } from "../../shared/errors.ts";

const DIR = relative(process.cwd(), join(import.meta.dirname, "../fixtures/config/invalid"));

beforeAll(() => {
  // git keeps no permission bits but the executable one; the fixture secrets
  // file must not draw the world-readable warning into every case below.
  chmodSync(join(DIR, ".secrets.toml"), 0o600);
});

const CASES: Array<[fixture: string, expected: string[]]> = [
  [
    "agent-aggregator-missing-certs.toml",
    [
      "{file}:4: aggregator.cert: required",
      "{file}:4: aggregator.key: required",
      "{file}:6: aggregator.ca: no such file: {dir}/certs/missing-ca.pem",
    ],
  ],
  [
    "agent-aggregator-url-scheme.toml",
    [
      '{file}:5: aggregator.url: must be host:port without a scheme, e.g. "hq.example.com:9740", got "https://hq.example.com:9740"',
    ],
  ],
  [
    "agent-aggregator-without-site.toml",
    ["{file}:1: agent.site: required when [aggregator] is set (it must match the agent's certificate)"],
  ],
  [
    "agent-bad-http-listen.toml",
    ['{file}:2: agent.http_listen: must be host:port, e.g. "0.0.0.0:9741", got "9741"'],
  ],
  [
    "agent-bad-id.toml",
    [
      '{file}:3: agent.id: must be 1 to 63 lowercase letters, digits, ".", "-" or "_", starting and ending with a letter or digit, got "-paris-01"',
    ],
  ],
  [
    "agent-bad-label-name.toml",
    [
      "{file}:9: probes[0].labels.team-name: label names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __",
    ],
  ],
  [
    "agent-over-field-limits.toml",
    [
      "{file}:2: probes[0].address: must be at most 255 bytes (the aggregator refuses longer), got 258",
      "{file}:7: probes[0].remote_basedir: must be at most 255 bytes (the aggregator refuses longer), got 300",
      "{file}:9: probes[0].labels: at most 16 labels (the aggregator refuses more), got 17",
      "{file}:17: probes[1].labels.team: label values are at most 256 bytes (the aggregator refuses longer), got 300",
      `{file}:17: probes[1].labels.${"k".repeat(70)}: label names are at most 64 bytes (the aggregator refuses longer)`,
      "{file}:18: probes[2].name: required here: the default name, address/share, is over 255 bytes (the aggregator refuses longer)",
    ],
  ],
  [
    "agent-bad-site.toml",
    [
      '{file}:2: agent.site: must be 1 to 63 lowercase letters, digits, ".", "-" or "_", starting and ending with a letter or digit, got "Paris HQ"',
    ],
  ],
  [
    "agent-basedir-control-char.toml",
    ["{file}:7: probes[0].remote_basedir: must not contain control characters (line breaks, tabs)"],
  ],
  [
    "agent-buffer-too-small.toml",
    [
      "{file}:2: agent.buffer_max_bytes: must be at least 1048576, got 1024",
      "{file}:3: agent.buffer_max_age: must be at least 1, got 0",
    ],
  ],
  [
    "agent-duplicate-target.toml",
    [
      "{file}:10: probes[1]: duplicate target: same address, domain, share and remote_basedir as probes[0] (line 1)",
    ],
  ],
  ["agent-empty-probes.toml", ["{file}:1: probes: nothing to probe: add at least one [[probes]] block"]],
  [
    "agent-error-and-warning.toml",
    [
      "{file}:1: probes[0].share: required",
      "{file}:8: probes[0].timeout: warning: 120 s is longer than the interval (60 s): a run still going when the next is due delays it",
    ],
  ],
  ["agent-interval-below-one.toml", ["{file}:8: probes[0].interval: must be at least 1, got 0.5"]],
  ["agent-interval-string.toml", ['{file}:8: probes[0].interval: expected a number, got a string ("5")']],
  [
    "agent-label-not-string.toml",
    ["{file}:9: probes[0].labels.floor: expected a string, got an integer (3)"],
  ],
  [
    "agent-many-problems.toml",
    [
      "{file}:3: agent.colour: unknown key",
      "{file}:10: probes[0].interval: must be at least 1, got 0",
      "{file}:11: probes[0].port: must be between 1 and 65535, got 0",
      "{file}:13: probes[1].username: required",
      '{file}:17: probes[1].auth: must be one of "ntlm", "kerberos", got "negotiate"',
      "{file}:18: probes[1].labels.agent: clashes with a label smbfleet sets itself (address, share, domain, operation, site, agent)",
      "{file}:20: probes[2]: duplicate target: same address, domain, share and remote_basedir as probes[0] (line 5)",
    ],
  ],
  [
    "agent-missing-address-and-username.toml",
    ["{file}:1: probes[0].address: required", "{file}:1: probes[0].username: required"],
  ],
  [
    "agent-missing-env.toml",
    [
      '{file}:6: probes[0].password: environment variable SMBFLEET_FIXTURE_UNSET is not set ("$ENV_SMBFLEET_FIXTURE_UNSET" reads it)',
    ],
  ],
  [
    "agent-missing-secret.toml",
    ["{file}:6: probes[0].password: secret secrets.users.nobody not found in {dir}/.secrets.toml"],
  ],
  ["agent-missing-share.toml", ["{file}:10: probes[1].share: required"]],
  ["agent-no-probes.toml", ["{file}:0: probes: nothing to probe: add at least one [[probes]] block"]],
  [
    "agent-operation-timeout-negative.toml",
    ["{file}:9: probes[0].operation_timeout: must be greater than 0, got -1"],
  ],
  [
    "agent-password-missing.toml",
    ['{file}:1: probes[0].password: required (or set SMB_MONITOR_PROBE_PASSWORD, or auth = "kerberos")'],
  ],
  ["agent-port-float.toml", ["{file}:9: probes[0].port: expected an integer, got a float (445.0)"]],
  ["agent-port-out-of-range.toml", ["{file}:9: probes[0].port: must be between 1 and 65535, got 70000"]],
  ["agent-port-string.toml", ['{file}:9: probes[0].port: expected an integer, got a string ("445")']],
  [
    "agent-probes-not-tables.toml",
    ['{file}:1: probes: expected an array of tables ([[probes]]), got a string ("10.0.0.5")'],
  ],
  [
    "agent-rename-not-bool.toml",
    ['{file}:9: probes[0].rename: expected a boolean (true or false), got a string ("yes")'],
  ],
  [
    "agent-reserved-label.toml",
    [
      "{file}:9: probes[0].labels.site: clashes with a label smbfleet sets itself (address, share, domain, operation, site, agent)",
    ],
  ],
  [
    "agent-share-unc-path.toml",
    ['{file}:4: probes[0].share: must be a share name without "/" or "\\", got "\\\\\\\\srv\\\\finance"'],
  ],
  [
    "agent-syntax-error.toml",
    ["{file}:4: (syntax): invalid TOML: control characters are not allowed in strings (column 17)"],
  ],
  [
    "agent-threshold-zero.toml",
    ["{file}:9: probes[0].latency_thresholds.login: must be greater than 0, got 0"],
  ],
  ["agent-timeout-zero.toml", ["{file}:9: probes[0].timeout: must be greater than 0, got 0"]],
  ["agent-too-many-files.toml", ["{file}:9: probes[0].files: must be between 1 and 100, got 1000"]],
  ["agent-unknown-agent-key.toml", ['{file}:3: agent.bufer_path: unknown key (did you mean "buffer_path"?)']],
  ["agent-unknown-auth.toml", ['{file}:9: probes[0].auth: must be one of "ntlm", "kerberos", got "basic"']],
  [
    "agent-unknown-key-typo.toml",
    [
      "{file}:1: probes[0].address: required",
      '{file}:8: probes[0].adress: unknown key (did you mean "address"?)',
    ],
  ],
  [
    "agent-unknown-protocol.toml",
    [
      '{file}:9: probes[0].protocol: must be one of NT1, SMB2, SMB2_02, SMB2_10, SMB3, SMB3_00, SMB3_02, SMB3_11, got "SMB4"',
    ],
  ],
  ["agent-unknown-section.toml", ['{file}:1: agnet: unknown key (did you mean "agent"?)']],
  [
    "agent-unknown-threshold-operation.toml",
    [
      "{file}:12: probes[0].latency_thresholds.lsdir: unknown operation; expected one of login, write, ls_dir, read, unlink, integrity, rename, mkdir, rmdir",
    ],
  ],
  [
    "agent-unsupported-format.toml",
    ['{file}:6: probes[0].password: unsupported @format reference: use "@format {this.secrets.users.NAME}"'],
  ],
  [
    "aggregator-bad-database-scheme.toml",
    ["{file}:5: database.url: scheme must be postgres or postgresql, got mysql"],
  ],
  [
    "aggregator-bad-disabled-id.toml",
    [
      '{file}:8: agents.disabled[1]: not a valid agent id: "Berlin 02"',
      "{file}:8: agents.disabled[2]: expected a string, got an integer (7)",
    ],
  ],
  [
    "aggregator-bad-limits.toml",
    [
      "{file}:9: limits.max_streams_per_agent: must be between 1 and 100, got 0",
      "{file}:10: limits.max_streams_per_connection: expected an integer, got a float (2.5)",
      "{file}:11: limits.hello_timeout: must be greater than 0, got 0",
      "{file}:12: limits.connection_age_grace: must be at least 0, got -1",
      '{file}:13: limits.batches_per_second: expected a number, got a string ("100")',
      "{file}:14: limits.max_targets_per_agent: must be at least 1, got 0",
      "{file}:15: limits.max_metrics_bytes: must be between 65536 and 536870888, got 1073741824",
      "{file}:16: limits.log_lines_per_minute: must be at least 1, got 0",
      '{file}:17: limits.max_stream_per_agent: unknown key (did you mean "max_streams_per_agent"?)',
    ],
  ],
  [
    "aggregator-limits-per-agent-budget.toml",
    [
      "{file}:10: limits.max_metrics_bytes_per_agent: warning: 2097152 is more than max_metrics_bytes (1048576): one agent may fill the whole render",
      "{file}:11: limits.hello_timeout: must be at most 300, got 600",
    ],
  ],
  [
    "aggregator-bad-listen.toml",
    [
      '{file}:3: server.grpc_listen: must be host:port, e.g. "0.0.0.0:9740", got "0.0.0.0"',
      '{file}:4: server.http_listen: must be host:port, e.g. "0.0.0.0:9742", got "[::]:99999"',
    ],
  ],
  ["aggregator-bad-redis-url.toml", ["{file}:8: redis.url: scheme must be redis or rediss, got http"]],
  [
    "aggregator-http-auth.toml",
    [
      "{file}:8: http_auth.basic_password: required with basic_user (or set SMBFLEET_HTTP_PASSWORD)",
      "{file}:10: http_auth.bearer_token: must be printable ASCII without spaces",
    ],
  ],
  [
    "aggregator-insecure-not-loopback.toml",
    [
      '{file}:3: server.insecure: requires a loopback grpc_listen (127.0.0.0/8, ::1 or localhost), not "10.1.0.10:9740": plain-text gRPC is for loopback demos; use [tls] otherwise',
    ],
  ],
  [
    "aggregator-missing-database-url.toml",
    ["{file}:0: database.url: required (or set SMBFLEET_DATABASE_URL)"],
  ],
  [
    "aggregator-tls-files-missing.toml",
    [
      "{file}:1: tls.key: required",
      "{file}:2: tls.ca: no such file: {dir}/certs/ca.pem",
      "{file}:3: tls.cert: no such file: {dir}/certs/server.pem",
    ],
  ],
  [
    "aggregator-tls-required.toml",
    [
      "{file}:0: tls: required: agents connect with mTLS (or set [server] insecure = true for a loopback demo)",
    ],
  ],
  ["aggregator-unknown-section.toml", ['{file}:7: sever: unknown key (did you mean "server"?)']],
  [
    "aggregator-wrong-types.toml",
    [
      '{file}:8: retention.raw_days: expected an integer, got a string ("30")',
      "{file}:11: incidents.consecutive_failures: must be between 1 and 1000, got 0",
      "{file}:14: ingest.late_after: must be greater than 0, got -5",
    ],
  ],
  ["notifier-bad-header.toml", ['{file}:7: notifications[0].headers."x team": not a valid HTTP header name']],
  [
    "notifier-bad-kind-and-site.toml",
    [
      '{file}:7: notifications[0].kinds[1]: unknown incident kind "outage"; expected one of target_failing, latency_degraded, flapping, agent_offline, cross_site',
      '{file}:8: notifications[0].sites[0]: not a valid site name: "Paris"',
    ],
  ],
  [
    "notifier-bad-severity.toml",
    [
      '{file}:8: notifications[0].severity: must be one of "critical", "error", "warning", "info", got "fatal"',
    ],
  ],
  ["notifier-bad-url.toml", ["{file}:6: notifications[0].url: scheme must be https or http, got ftp"]],
  [
    "notifier-email-missing.toml",
    [
      "{file}:4: notifications[0].smtp_host: required",
      "{file}:4: notifications[0].from: required",
      "{file}:4: notifications[0].to: required",
    ],
  ],
  ["notifier-http-missing-url.toml", ["{file}:4: notifications[0].url: required"]],
  ["notifier-missing-redis.toml", ["{file}:0: redis.url: required (or set SMBFLEET_REDIS_URL)"]],
  ["notifier-pager-duty-missing-key.toml", ["{file}:4: notifications[0].integration_key: required"]],
  [
    "notifier-request-bin.toml",
    [
      '{file}:6: notifications[0].target: "request-bin" posts every alert to a third-party public service; use target = "generic-post" with a url of your own',
    ],
  ],
  [
    "notifier-unknown-target.toml",
    [
      '{file}:5: notifications[0].target: must be one of "pager-duty", "better-stack", "msft-teams", "generic-post", "email", got "slack"',
    ],
  ],
  [
    "unknown-kind.toml",
    [
      "{file}:0: (file): cannot tell which config this is: expected [[probes]] or [agent] (agent), [server] or [database] (aggregator), [[notifications]] or [redis] (notifier)",
    ],
  ],
];

function expand(line: string, file: string): string {
  return line.replaceAll("{file}", file).replaceAll("{dir}", DIR);
}

describe("invalid configs", () => {
  it("has a case for every fixture, and at least 30", () => {
    const fixtures = readdirSync(DIR).filter((f) => f.endsWith(".toml") && !f.startsWith("."));
    expect(CASES.map(([f]) => f).sort()).toEqual(fixtures.sort());
    expect(fixtures.length).toBeGreaterThanOrEqual(30);
  });

  it.each(CASES)("%s", (fixture, expected) => {
    const file = join(DIR, fixture);
    const checked = checkConfigFile(file, {});
    expect(checked.problems.map(formatProblem)).toEqual(expected.map((l) => expand(l, file)));
    expect(countErrors(checked.problems)).toBeGreaterThan(0);
    expect(checked.config).toBeNull();
  });

  it.each(CASES.filter(([f]) => f !== "unknown-kind.toml"))(
    "the role's own loader refuses %s with the same problems",
    (fixture, expected) => {
      const file = join(DIR, fixture);
      const load = fixture.startsWith("aggregator-")
        ? loadAggregatorConfig
        : fixture.startsWith("notifier-")
          ? loadNotifierConfig
          : loadAgentConfig;
      let thrown: unknown;
      try {
        load(file, {});
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      const err = thrown as ConfigError;
      expect(err.code).toBe("CONFIG_INVALID");
      expect(err.problems.map(formatProblem)).toEqual(expected.map((l) => expand(l, file)));
      // The message alone tells the operator everything: every problem, one per line.
      for (const line of expected) expect(err.message).toContain(expand(line, file));
    },
  );

  it("a missing file is CONFIG_NOT_FOUND naming the file", () => {
    const file = join(DIR, "no-such-config.toml");
    let thrown: unknown;
    try {
      loadAgentConfig(file, {});
    } catch (err) {
      thrown = err;
    }
    expect(isSmbfleetError(thrown, "CONFIG_NOT_FOUND")).toBe(true);
    expect((thrown as ConfigError).problems.map(formatProblem)).toEqual([
      `${file}:0: (file): cannot read: no such file`,
    ]);
  });
});
