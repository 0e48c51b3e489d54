// aggregator.toml: listeners, TLS, PostgreSQL, Redis, ingest limits, what
// one agent may cost ([limits]), retention, disabled agents, incident
// thresholds, HTTP auth.
import { dirname, join, resolve } from "node:path";
import { Secret } from "../secret.ts";
import { AGGREGATOR_DEFAULTS, DATABASE_URL_ENV, LIMITS_DEFAULTS, REDIS_URL_ENV } from "./defaults.ts";
import { buildFrom, configOrThrow, loadWith, type BuildContext, type LoadResult } from "./load.ts";
import type { ProblemSink } from "./problems.ts";
import { TableReader } from "./reader.ts";
import type { TomlSource } from "./toml-source.ts";
import type { AggregatorConfig } from "./types.ts";
import {
  formatListen,
  isLoopbackHost,
  isValidName,
  readExistingFile,
  readListen,
  resolvePath,
} from "./values.ts";
import { readServiceUrl } from "./service-url.ts";
import { readHttpAuth } from "./http-auth.ts";

/** Loads and validates aggregator.toml; throws ConfigError listing every problem. */
export function loadAggregatorConfig(file: string, env: NodeJS.ProcessEnv): AggregatorConfig {
  return configOrThrow(file, readAggregatorConfig(file, env));
}

export function readAggregatorConfig(file: string, env: NodeJS.ProcessEnv): LoadResult<AggregatorConfig> {
  return loadWith(file, env, buildAggregatorConfig);
}

export function aggregatorConfigFrom(
  source: TomlSource,
  env: NodeJS.ProcessEnv,
  sink: ProblemSink,
): LoadResult<AggregatorConfig> {
  return buildFrom(source, env, sink, buildAggregatorConfig);
}

function buildAggregatorConfig(source: TomlSource, ctx: BuildContext): AggregatorConfig {
  const d = AGGREGATOR_DEFAULTS;
  const root = new TableReader(ctx.sink, "", source.table);
  const server = root.table("server") ?? new TableReader(ctx.sink, "server", {});
  const insecure = server.boolean("insecure") ?? false;
  const errorsBefore = ctx.sink.errorCount;
  const grpcListen = readListen(server, "grpc_listen", d.grpcListen);
  if (insecure && ctx.sink.errorCount === errorsBefore && !isLoopbackHost(grpcListen.host)) {
    // As the agent's [aggregator] insecure, but an error: a listener is reachable by anyone on its network.
    server.error(
      "insecure",
      `requires a loopback grpc_listen (127.0.0.0/8, ::1 or localhost), not ${JSON.stringify(formatListen(grpcListen))}: ` +
        "plain-text gRPC is for loopback demos; use [tls] otherwise",
    );
  }
  const config: AggregatorConfig = {
    file: resolve(ctx.file),
    server: {
      grpcListen,
      httpListen: readListen(server, "http_listen", d.httpListen),
      insecure,
      maxMessageBytes:
        server.integer("max_message_bytes", { min: 1024, max: d.maxMessageBytesCeiling }) ??
        d.maxMessageBytes,
    },
    tls: null,
    database: { url: new Secret(""), poolSize: d.databasePoolSize },
    redis: null,
    ingest: {
      maxResultsPerSecondPerAgent: d.maxResultsPerSecondPerAgent,
      maxFutureSkewSeconds: d.maxFutureSkewSeconds,
      clockSkewWarnSeconds: d.clockSkewWarnSeconds,
      lateAfterSeconds: d.lateAfterSeconds,
    },
    limits: { ...LIMITS_DEFAULTS },
    retention: { rawDays: d.rawRetentionDays, rollupDays: d.rollupRetentionDays },
    agents: { disabled: [] },
    incidents: { consecutiveFailures: d.consecutiveFailures },
    httpAuth: null,
    warnings: [],
  };
  server.finish();

  const tls = root.table("tls");
  if (tls !== undefined) {
    const ca = readExistingFile(tls, "ca", ctx.dir, { required: true });
    const cert = readExistingFile(tls, "cert", ctx.dir, { required: true });
    const key = readExistingFile(tls, "key", ctx.dir, { required: true });
    // Not required to exist: a fleet that never revoked a certificate has no list.
    const revokedPath = tls.string("revoked", { nonEmpty: true });
    tls.finish();
    if (insecure) ctx.sink.warn("tls", "ignored: [server] insecure = true serves plain text");
    else if (ca !== undefined && cert !== undefined && key !== undefined) {
      const revoked =
        revokedPath === undefined
          ? join(dirname(ca), AGGREGATOR_DEFAULTS.revocationListName)
          : resolvePath(ctx.dir, revokedPath);
      config.tls = { ca, cert, key, revoked };
    }
  } else if (!insecure) {
    ctx.sink.error(
      "tls",
      "required: agents connect with mTLS (or set [server] insecure = true for a loopback demo)",
    );
  }

  const database = root.table("database") ?? new TableReader(ctx.sink, "database", {});
  const dbUrl = readServiceUrl(database, "url", ctx.env, DATABASE_URL_ENV, ["postgres", "postgresql"], true);
  if (dbUrl !== undefined) config.database.url = dbUrl;
  config.database.poolSize = database.integer("pool_size", { min: 1, max: 1000 }) ?? config.database.poolSize;
  database.finish();

  const redis = root.table("redis") ?? new TableReader(ctx.sink, "redis", {});
  const redisUrl = readServiceUrl(redis, "url", ctx.env, REDIS_URL_ENV, ["redis", "rediss"], false);
  if (redisUrl !== undefined) config.redis = { url: redisUrl };
  redis.finish();

  const ingest = root.table("ingest");
  if (ingest !== undefined) {
    const i = config.ingest;
    i.maxResultsPerSecondPerAgent =
      ingest.integer("max_results_per_second_per_agent", { min: 1 }) ?? i.maxResultsPerSecondPerAgent;
    i.maxFutureSkewSeconds = ingest.number("max_future_skew", { above: 0 }) ?? i.maxFutureSkewSeconds;
    i.clockSkewWarnSeconds = ingest.number("clock_skew_warn", { above: 0 }) ?? i.clockSkewWarnSeconds;
    i.lateAfterSeconds = ingest.number("late_after", { above: 0 }) ?? i.lateAfterSeconds;
    ingest.finish();
  }

  const limits = root.table("limits");
  if (limits !== undefined) {
    readLimits(limits, config.limits);
    limits.finish();
  }

  const retention = root.table("retention");
  if (retention !== undefined) {
    const r = config.retention;
    r.rawDays = retention.integer("raw_days", { min: 1 }) ?? r.rawDays;
    r.rollupDays = retention.integer("rollup_days", { min: 1 }) ?? r.rollupDays;
    if (r.rollupDays < r.rawDays) {
      retention.warn(
        "rollup_days",
        `${r.rollupDays} days is shorter than raw_days (${r.rawDays}): rollups go first`,
      );
    }
    retention.finish();
  }

  const agents = root.table("agents");
  if (agents !== undefined) {
    config.agents.disabled =
      agents.stringArray("disabled", {
        each: (id) => (isValidName(id) ? null : `not a valid agent id: ${JSON.stringify(id)}`),
      }) ?? [];
    agents.finish();
  }

  const incidents = root.table("incidents");
  if (incidents !== undefined) {
    config.incidents.consecutiveFailures =
      incidents.integer("consecutive_failures", { min: 1, max: 1000 }) ??
      config.incidents.consecutiveFailures;
    incidents.finish();
  }

  config.httpAuth = readHttpAuth(root, ctx.env);
  root.finish();
  return config;
}

/** V8's longest string is 2^29 − 24 UTF-16 units: a /metrics render budget above it could never be met. */
const MAX_RENDER_BYTES = 2 ** 29 - 24;

/** [limits]: each key overrides its LIMITS_DEFAULTS value. */
function readLimits(t: TableReader, l: AggregatorConfig["limits"]): void {
  l.maxStreamsPerAgent = t.integer("max_streams_per_agent", { min: 1, max: 100 }) ?? l.maxStreamsPerAgent;
  l.maxStreamsPerConnection =
    t.integer("max_streams_per_connection", { min: 1, max: 1000 }) ?? l.maxStreamsPerConnection;
  l.helloTimeoutSeconds = t.number("hello_timeout", { above: 0, max: 300 }) ?? l.helloTimeoutSeconds;
  l.connectionIdleSeconds = t.number("connection_idle", { above: 0 }) ?? l.connectionIdleSeconds;
  l.maxConnectionAgeSeconds = t.number("max_connection_age", { above: 0 }) ?? l.maxConnectionAgeSeconds;
  l.connectionAgeGraceSeconds = t.number("connection_age_grace", { min: 0 }) ?? l.connectionAgeGraceSeconds;
  l.hellosPerMinute = t.number("hellos_per_minute", { above: 0 }) ?? l.hellosPerMinute;
  l.heartbeatsPerMinute = t.number("heartbeats_per_minute", { above: 0 }) ?? l.heartbeatsPerMinute;
  l.batchesPerSecond = t.number("batches_per_second", { above: 0 }) ?? l.batchesPerSecond;
  l.maxTargetsPerAgent = t.integer("max_targets_per_agent", { min: 1 }) ?? l.maxTargetsPerAgent;
  l.newTargetsPerMinute = t.integer("new_targets_per_minute", { min: 1 }) ?? l.newTargetsPerMinute;
  l.metricsStaleAfterSeconds = t.number("metrics_stale_after", { above: 0 }) ?? l.metricsStaleAfterSeconds;
  l.maxMetricsBytes =
    t.integer("max_metrics_bytes", { min: 65536, max: MAX_RENDER_BYTES }) ?? l.maxMetricsBytes;
  l.maxMetricsBytesPerAgent =
    t.integer("max_metrics_bytes_per_agent", { min: 4096, max: MAX_RENDER_BYTES }) ??
    l.maxMetricsBytesPerAgent;
  l.logLinesPerMinute = t.integer("log_lines_per_minute", { min: 1 }) ?? l.logLinesPerMinute;
  if (l.maxMetricsBytesPerAgent > l.maxMetricsBytes) {
    t.warn(
      "max_metrics_bytes_per_agent",
      `${l.maxMetricsBytesPerAgent} is more than max_metrics_bytes (${l.maxMetricsBytes}): one agent may fill the whole render`,
    );
  }
}
