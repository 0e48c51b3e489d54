// Valid configs load into exactly the values written, with the documented
// defaults where nothing is written and relative paths resolved against the
// config file's folder.
import { chmodSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadAgentConfig } from "../../shared/config/agent.ts";
import { loadAggregatorConfig } from "../../shared/config/aggregator.ts";
import {
  AGENT_DEFAULTS,
  AGGREGATOR_DEFAULTS,
  LIMITS_DEFAULTS,
  PROBE_DEFAULTS,
} from "../../shared/config/defaults.ts";
import { loadNotifierConfig } from "../../shared/config/notifier.ts";

const DIR = relative(process.cwd(), join(import.meta.dirname, "../fixtures/config/valid"));
const abs = (p: string): string => resolve(DIR, p);

beforeAll(() => {
  chmodSync(join(DIR, ".secrets.toml"), 0o600);
});

describe("agent config", () => {
  it("loads every key of agent-full.toml", () => {
    const config = loadAgentConfig(join(DIR, "agent-full.toml"), {});
    expect(config.file).toBe(abs("agent-full.toml"));
    expect(config.warnings).toEqual([]);
    expect(config.agent).toEqual({
      site: "paris",
      id: "paris-01",
      bufferPath: abs("state/buffer.db"),
      httpListen: { host: "127.0.0.1", port: 0 },
      maxConcurrentRuns: 8,
      maxSpawnsPerSecond: 5.5,
      buffer: { maxBytes: 64 * 1024 * 1024, maxAgeSeconds: 86400 },
    });
    expect(config.aggregator).toEqual({
      url: "hq.example.com:9740",
      ca: abs("certs/ca.pem"),
      cert: abs("certs/paris-01.pem"),
      key: abs("certs/paris-01-key.pem"),
      insecure: false,
    });
    const [finance, home] = config.probes;
    expect(finance).toMatchObject({
      name: "finance",
      address: "10.0.0.5",
      port: 1445,
      domain: "CORP",
      share: "finance",
      username: "probeuser",
      remoteBasedir: "monitoring",
      intervalSeconds: 30,
      timeoutSeconds: 20,
      operationTimeoutSeconds: 5,
      auth: "ntlm",
      protocol: "SMB3",
      labels: { team: "storage", tier: "gold" },
      fileCount: 3,
      fileSizeBytes: 8192,
      rename: true,
      mkdir: true,
      line: 18,
    });
    expect(finance?.password.reveal()).toBe("p@ss word %1");
    expect(finance?.latencyThresholdsMs).toEqual({
      login: 3000,
      write: 1000,
      ls_dir: 1000,
      read: 500,
      unlink: 1000,
      integrity: 1000,
      rename: 1000,
      mkdir: 1000,
      rmdir: 1000,
    });
    // Kerberos needs no password; timeouts follow the (fractional) interval.
    expect(home).toMatchObject({
      name: "fs2.corp.example.com/home",
      port: PROBE_DEFAULTS.port,
      domain: "",
      remoteBasedir: ".",
      auth: "kerberos",
      intervalSeconds: 2.5,
      timeoutSeconds: 2.5,
      operationTimeoutSeconds: 2.5,
      protocol: null,
      fileCount: 5,
      fileSizeBytes: 4096,
      rename: false,
      mkdir: false,
      line: 42,
    });
    expect(home?.password.isEmpty).toBe(true);
  });

  it("fills every default for a minimal config", () => {
    const config = loadAgentConfig(join(DIR, "agent-minimal.toml"), { PROBE_PASSWORD: "pw" });
    expect(config.aggregator).toBeNull();
    expect(config.httpAuth).toBeNull();
    const env = { PROBE_PASSWORD: "pw", SMBFLEET_HTTP_TOKEN: "agent-scrape-token-0123" };
    expect(loadAgentConfig(join(DIR, "agent-minimal.toml"), env).httpAuth?.bearerToken?.reveal()).toBe(
      env.SMBFLEET_HTTP_TOKEN,
    );
    expect(config.agent).toEqual({
      site: null,
      id: null,
      bufferPath: AGENT_DEFAULTS.bufferPath,
      httpListen: { host: "0.0.0.0", port: 9741 },
      maxConcurrentRuns: AGENT_DEFAULTS.maxConcurrentRuns,
      maxSpawnsPerSecond: AGENT_DEFAULTS.maxSpawnsPerSecond,
      buffer: { maxBytes: 256 * 1024 * 1024, maxAgeSeconds: 7 * 24 * 3600 },
    });
    expect(config.probes[0]).toMatchObject({
      name: "127.0.0.1/public",
      intervalSeconds: 60,
      timeoutSeconds: 60,
      operationTimeoutSeconds: 10,
      latencyThresholdsMs: expect.objectContaining({ login: 2000, write: 1000 }) as unknown,
    });
  });
});

describe("aggregator config", () => {
  it("loads every key of aggregator-full.toml", () => {
    const config = loadAggregatorConfig(join(DIR, "aggregator-full.toml"), {});
    // Secrets in the file work, and draw a warning each.
    expect(config.warnings.map((w) => `${w.line}: ${w.key}: ${w.message}`)).toEqual([
      "52: http_auth.bearer_token: holds a secret: prefer SMBFLEET_HTTP_TOKEN to keep it out of the file",
      "54: http_auth.basic_password: holds a secret: prefer SMBFLEET_HTTP_PASSWORD to keep it out of the file",
    ]);
    expect(config.server).toEqual({
      grpcListen: { host: "127.0.0.1", port: 0 },
      httpListen: { host: "::1", port: 9842 },
      insecure: false,
      maxMessageBytes: 1048576,
    });
    expect(config.tls).toEqual({
      ca: abs("certs/ca.pem"),
      cert: abs("certs/server.pem"),
      key: abs("certs/server-key.pem"),
      // Not set in the file: revoked.json beside the CA, where `smbfleet pki` writes it.
      revoked: abs("certs/revoked.json"),
    });
    expect(config.database.url.reveal()).toBe("postgres://smbfleet@127.0.0.1:5432/smbfleet");
    expect(config.database.poolSize).toBe(4);
    expect(config.redis?.url.reveal()).toBe("redis://127.0.0.1:6379/2");
    expect(config.ingest).toEqual({
      maxResultsPerSecondPerAgent: 2000,
      maxFutureSkewSeconds: 60,
      clockSkewWarnSeconds: 5.5,
      lateAfterSeconds: 600,
    });
    expect(config.limits).toEqual({
      maxStreamsPerAgent: 3,
      maxStreamsPerConnection: 8,
      helloTimeoutSeconds: 2.5,
      connectionIdleSeconds: 60,
      maxConnectionAgeSeconds: 600,
      connectionAgeGraceSeconds: 5,
      hellosPerMinute: 3,
      heartbeatsPerMinute: 6,
      batchesPerSecond: 20,
      maxTargetsPerAgent: 200,
      newTargetsPerMinute: 50,
      metricsStaleAfterSeconds: 900,
      maxMetricsBytes: 64 * 1024 * 1024,
      maxMetricsBytesPerAgent: 1024 * 1024,
      logLinesPerMinute: 5,
    });
    expect(config.retention).toEqual({ rawDays: 14, rollupDays: 90 });
    expect(config.agents.disabled).toEqual(["paris-02", "berlin-07"]);
    expect(config.incidents.consecutiveFailures).toBe(5);
    expect(config.httpAuth?.bearerToken?.reveal()).toBe("0123456789abcdef0123456789abcdef");
    expect(config.httpAuth?.basic?.user).toBe("prometheus");
    expect(config.httpAuth?.basic?.password.reveal()).toBe("scrape pass");
    expect(JSON.stringify(config.httpAuth)).toBe(
      '{"bearerToken":"<redacted>","basic":{"user":"prometheus","password":"<redacted>"}}',
    );
  });

  it("takes the URLs from the environment, over the file", () => {
    const env = {
      SMBFLEET_DATABASE_URL: "postgresql://other@127.0.0.1:5433/x",
      SMBFLEET_REDIS_URL: "rediss://127.0.0.1:6380",
      SMBFLEET_HTTP_TOKEN: "from-the-environment-0123456789",
      SMBFLEET_HTTP_PASSWORD: "env pass",
    };
    const config = loadAggregatorConfig(join(DIR, "aggregator-full.toml"), env);
    expect(config.database.url.reveal()).toBe(env.SMBFLEET_DATABASE_URL);
    expect(config.redis?.url.reveal()).toBe(env.SMBFLEET_REDIS_URL);
    expect(config.httpAuth?.bearerToken?.reveal()).toBe(env.SMBFLEET_HTTP_TOKEN);
    expect(config.httpAuth?.basic?.password.reveal()).toBe(env.SMBFLEET_HTTP_PASSWORD);
    expect(config.warnings).toEqual([]);

    const minimal = loadAggregatorConfig(join(DIR, "aggregator-minimal.toml"), env);
    expect(minimal.tls).toBeNull();
    expect(minimal.server.insecure).toBe(true);
    expect(minimal.server.grpcListen).toEqual({ host: "::1", port: 9740 });
    expect(minimal.server.maxMessageBytes).toBe(AGGREGATOR_DEFAULTS.maxMessageBytes);
    expect(minimal.retention).toEqual({ rawDays: 30, rollupDays: 400 });
    expect(minimal.incidents.consecutiveFailures).toBe(3);
    expect(minimal.limits).toEqual(LIMITS_DEFAULTS);
    // The environment alone turns bearer auth on.
    expect(minimal.httpAuth).toEqual({ bearerToken: expect.anything() as unknown, basic: null });
    const noToken = { SMBFLEET_DATABASE_URL: env.SMBFLEET_DATABASE_URL };
    expect(loadAggregatorConfig(join(DIR, "aggregator-minimal.toml"), noToken).httpAuth).toBeNull();
  });
});

describe("notifier config", () => {
  it("loads every key of notifier-full.toml", () => {
    const config = loadNotifierConfig(join(DIR, "notifier-full.toml"), { PD_KEY: "pd-routing-key" });
    expect(config.warnings).toEqual([]);
    expect(config.httpListen).toEqual({ host: "127.0.0.1", port: 0 });
    expect(config.redis.url.reveal()).toBe("redis://127.0.0.1:6379");
    const [pd, post, mail] = config.notifications;
    expect(pd).toMatchObject({
      target: "pager-duty",
      url: "https://events.pagerduty.com/v2/enqueue",
      severity: "critical",
      sourceEmail: "probe@example.com",
      summary: "SMB share failing",
      sites: ["paris", "berlin"],
      kinds: ["target_failing", "agent_offline"],
      smtp: null,
      line: 6,
    });
    expect(pd?.integrationKey?.reveal()).toBe("pd-routing-key");
    expect(post).toMatchObject({
      target: "generic-post",
      headers: { "x-team": "storage", Authorization: "Bearer abc" },
      integrationKey: null,
      sites: [],
      kinds: [],
    });
    expect(mail).toMatchObject({
      target: "email",
      url: null,
      smtp: { host: "127.0.0.1", port: 2525, from: "smbfleet@example.com", tls: false, username: "smbfleet" },
    });
    expect(mail?.smtp?.to).toEqual(["ops@example.com", "storage@example.com"]);
    expect(mail?.smtp?.password?.reveal()).toBe("p@ss word %1");
  });
});
