// `smbfleet aggregator --config F`: migrate the database, then serve gRPC
// ingest, /metrics /healthz /readyz, and run the maintenance job, until the
// signal main.ts aborts for SIGTERM/SIGINT. Shutdown: refuse new streams, let
// each stream commit and ack the batch in hand (the rest stays unacked and is
// resent elsewhere), close HTTP, stop maintenance, close the pools, exit 0.
import type { CommandIo } from "../shared/command-io.ts";
import { VERSION } from "../shared/version.ts";
import { loadConfigOrReport, parseConfigCommandLine } from "../shared/command-line.ts";
import { Backoff } from "../shared/backoff.ts";
import { loadAggregatorConfig } from "../shared/config/aggregator.ts";
import { formatProblem } from "../shared/config/problems.ts";
import type { AggregatorConfig } from "../shared/config/types.ts";
import { SmbfleetError, errorMessage } from "../shared/errors.ts";
import { startHttpServer, type RunningHttpServer } from "../shared/http/server.ts";
import { createLogger, type Logger } from "../shared/logger.ts";
import { loadTlsFiles } from "../shared/tls/files.ts";
import { RevocationWatch } from "./ingest/admission/revocation-watch.ts";
import { BatchPool } from "./ingest/store/batch-pool.ts";
import { closeDatabase, connectDatabase, MAINTENANCE_STATEMENT_TIMEOUT_MS } from "./db/connect.ts";
import { maintenanceIntervalFromEnv, startMaintenance, type Maintenance } from "./db/maintenance.ts";
import { migrate, openMigrationPool, schemaStatus } from "./db/migrate.ts";
import type { TxConnector } from "./db/transaction.ts";
import { isTransactionError } from "./db/tx-errors.ts";
import { guardConnectionLoss } from "./db/connection-loss.ts";
import { closeTxPool, createTxPool } from "./db/tx-pool.ts";
import { AgentQuotas } from "./ingest/stream/quotas.ts";
import { AgentRateLimits } from "./ingest/stream/rate-limit.ts";
import { startIngestServer, type RunningIngestServer } from "./ingest/stream/server.ts";
import { TargetCache } from "./ingest/store/targets.ts";
import { AggregatorMetrics } from "./metrics/aggregator-metrics.ts";
import { metricsObserver } from "./metrics/ingest-observer.ts";

const USAGE = `usage: smbfleet aggregator --config FILE

Applies database migrations, then accepts agent streams on [server]
grpc_listen (mTLS), stores results in PostgreSQL, and serves /metrics,
/healthz and /readyz on [server] http_listen, until SIGTERM/SIGINT.

options:
  -c, --config FILE   aggregator.toml
  -h, --help          this text
`;

/**
 * Connections for Hello, Heartbeat and disconnect bookkeeping: short single
 * statements; batches have their own pool of [database] pool_size.
 */
const BOOKKEEPING_POOL_SIZE = 4;

/** Start-up keeps trying an unreachable database this long before giving up (a database container may start later). */
const STARTUP_DB_WAIT_MS = 120_000;

export async function run(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  io: CommandIo,
): Promise<number> {
  const config = loadFromCommandLine(argv, env, io, USAGE);
  if (typeof config === "number") return config;
  let maintenanceIntervalMs: number | undefined;
  try {
    maintenanceIntervalMs = maintenanceIntervalFromEnv(env);
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return 1;
  }
  return runAggregator(config, createLogger("aggregator"), signal, { maintenanceIntervalMs });
}

/** --config FILE, loaded and validated; an exit code when that failed (problems printed). */
export function loadFromCommandLine(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: CommandIo,
  usage: string,
): AggregatorConfig | number {
  const args = parseConfigCommandLine(argv, {}, usage, io);
  if (!args.ok) return args.exitCode;
  return loadConfigOrReport(() => loadAggregatorConfig(args.file, env), io) ?? 1;
}

/**
 * Migrates, retrying while the database is unreachable or the connection is
 * lost mid-migration, until it succeeds, the wait is over or the signal aborts.
 */
export async function migrateWithRetry(
  pool: TxConnector,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  const backoff = new Backoff({ initialMs: 500, maxMs: 10_000 });
  const deadline = Date.now() + STARTUP_DB_WAIT_MS;
  for (;;) {
    try {
      await migrate(pool, { logger });
      return;
    } catch (err) {
      // Only a transient TransactionError is worth waiting for. A failing
      // migration (MIGRATION_FAILED) is not "unreachable": retrying repeats it.
      // After DB_COMMIT_UNKNOWN the next attempt finds a committed migration
      // in schema_migrations and skips it.
      if (!isTransactionError(err) || !err.transient) throw err;
      if (Date.now() > deadline || signal.aborted) throw err;
      logger.warn(
        { err: errorMessage(err), code: err.code },
        "database unavailable while migrating; retrying",
      );
      if (!(await backoff.sleep(signal))) throw err;
    }
  }
}

export async function runAggregator(
  config: AggregatorConfig,
  logger: Logger,
  signal: AbortSignal,
  opts: { maintenanceIntervalMs?: number | undefined } = {},
): Promise<number> {
  for (const w of config.warnings) logger.warn({ problem: w }, formatProblem(w));
  logger.info({ version: VERSION, config }, "effective config");
  if (config.server.insecure) {
    logger.warn(
      "server.insecure = true: plain-text gRPC, agent identity taken from Hello; loopback demos only",
    );
  }

  // From here on, a database connection lost with no query waiting on it is
  // logged, not fatal (aggregator/db/connection-loss.ts).
  const unguard = guardConnectionLoss(logger);
  const sql = connectDatabase({ url: config.database.url, poolSize: BOOKKEEPING_POOL_SIZE, logger });
  // Batches get [database] pool_size connections of their own (ingest/store/batch-pool.ts).
  const batchSql = connectDatabase({
    url: config.database.url,
    poolSize: config.database.poolSize,
    logger,
    applicationName: "smbfleet-aggregator-ingest",
  });
  // Maintenance runs multi-statement transactions: on node-postgres, never
  // postgres.js (aggregator/db/tx-pool.ts says why).
  const maintenancePool = createTxPool({
    url: config.database.url,
    max: 1,
    logger,
    statementTimeoutMs: MAINTENANCE_STATEMENT_TIMEOUT_MS,
    applicationName: "smbfleet-aggregator-maintenance",
  });
  let grpc: RunningIngestServer | null = null;
  let http: RunningHttpServer | null = null;
  let maintenance: Maintenance | null = null;
  let revocations: RevocationWatch | null = null;
  const stop = async (): Promise<void> => {
    await grpc?.close();
    await revocations?.stop();
    await http?.close();
    await maintenance?.stop();
    await Promise.all([closeDatabase(sql), closeDatabase(batchSql), closeTxPool(maintenancePool)]);
  };

  try {
    const tls = config.server.insecure ? null : await tlsFiles(config, logger);
    if (config.tls !== null && tls !== null) {
      revocations = await RevocationWatch.start(config.tls.revoked, logger);
    }
    // Migrations are transactions: on node-postgres, on a connection of their
    // own with no statement limit, closed once the schema is current.
    const migrationPool = openMigrationPool(config.database.url, {
      logger,
      applicationName: "smbfleet-aggregator-migrate",
    });
    try {
      await migrateWithRetry(migrationPool, logger, signal);
    } finally {
      await closeTxPool(migrationPool);
    }
    maintenance = startMaintenance(maintenancePool, logger, {
      rawDays: config.retention.rawDays,
      rollupDays: config.retention.rollupDays,
      ...(opts.maintenanceIntervalMs === undefined ? {} : { intervalMs: opts.maintenanceIntervalMs }),
    });
    // Today's partitions before the first batch.
    await maintenance.runOnce();
    const l = config.limits;
    const metrics = new AggregatorMetrics({
      staleAfterMs: l.metricsStaleAfterSeconds * 1000,
      maxRenderBytes: l.maxMetricsBytes,
      maxRenderBytesPerAgent: l.maxMetricsBytesPerAgent,
    });
    grpc = await startIngestServer({
      listen: config.server.grpcListen,
      tls: tls === null ? null : { ca: tls.ca, cert: tls.cert, key: tls.key },
      revocations,
      maxMessageBytes: config.server.maxMessageBytes,
      connections: {
        maxStreamsPerConnection: l.maxStreamsPerConnection,
        idleMs: l.connectionIdleSeconds * 1000,
        maxAgeMs: l.maxConnectionAgeSeconds * 1000,
        ageGraceMs: l.connectionAgeGraceSeconds * 1000,
      },
      deps: {
        sql,
        batches: new BatchPool(batchSql, config.database.poolSize),
        targets: new TargetCache(),
        metrics,
        // After each commit: metrics now; the incident engine joins here.
        observers: [metricsObserver(metrics)],
        logger,
        limits: new AgentRateLimits(config.ingest.maxResultsPerSecondPerAgent),
        quotas: new AgentQuotas(
          {
            maxStreamsPerAgent: l.maxStreamsPerAgent,
            helloTimeoutMs: l.helloTimeoutSeconds * 1000,
            hellosPerMinute: l.hellosPerMinute,
            heartbeatsPerMinute: l.heartbeatsPerMinute,
            batchesPerSecond: l.batchesPerSecond,
            maxTargetsPerAgent: l.maxTargetsPerAgent,
            newTargetsPerMinute: l.newTargetsPerMinute,
            logLinesPerMinute: l.logLinesPerMinute,
          },
          { onLogSuppressed: () => metrics.logLinesSuppressed.inc() },
        ),
        serverVersion: VERSION,
        settings: {
          insecure: config.server.insecure,
          maxFutureSkewMs: config.ingest.maxFutureSkewSeconds * 1000,
          clockSkewWarnMs: config.ingest.clockSkewWarnSeconds * 1000,
          lateAfterMs: config.ingest.lateAfterSeconds * 1000,
          disabledAgents: new Set(config.agents.disabled),
          maxMessageBytes: config.server.maxMessageBytes,
        },
      },
    });
    http = await startHttpServer({
      listen: config.server.httpListen,
      registry: metrics.registry,
      render: () => metrics.render(),
      auth: config.httpAuth,
      logger,
      readiness: [
        {
          name: "database",
          check: async () => {
            try {
              return await schemaStatus(sql);
            } catch (err) {
              return `unreachable: ${errorMessage(err)}`;
            }
          },
        },
      ],
    });
  } catch (err) {
    logger.error({ err: errorMessage(err) }, `aggregator failed to start: ${errorMessage(err)}`);
    await stop();
    unguard();
    return 1;
  }

  logger.info({ grpc: grpc.port, http: http.port, insecure: config.server.insecure }, "aggregator started");
  if (!signal.aborted) {
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  }
  logger.info({ reason: errorMessage(signal.reason) }, "aggregator stopping");
  await stop();
  logger.info("aggregator stopped");
  unguard();
  return 0;
}

async function tlsFiles(config: AggregatorConfig, logger: Logger) {
  // Never fall back to plain text: mTLS is required unless insecure is explicit.
  if (config.tls === null)
    throw new SmbfleetError("CONFIG_INVALID", "[tls] is required unless server.insecure = true");
  const files = await loadTlsFiles(config.tls);
  for (const w of files.warnings) logger.warn({ tls: w }, w);
  return files;
}
