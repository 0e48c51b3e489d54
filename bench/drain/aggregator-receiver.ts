// The real target of a drain: the aggregator's ingest server (mTLS, identity
// from the certificate, one PostgreSQL transaction per batch, ack after
// commit) on a harness PostgreSQL with fsync on, with the aggregator's default
// limits (maxResultsPerSecondPerAgent, maxMessageBytes) from its config.
import type { ServerCredentials } from "@grpc/grpc-js";
import { closeDatabase, connectDatabase } from "../../aggregator/db/connect.ts";
import { migrate } from "../../aggregator/db/migrate.ts";
import { AgentRateLimits } from "../../aggregator/ingest/rate-limit.ts";
import { startIngestServer } from "../../aggregator/ingest/server.ts";
import { TargetCache } from "../../aggregator/ingest/targets.ts";
import { AggregatorMetrics } from "../../aggregator/metrics/aggregator-metrics.ts";
import { AGGREGATOR_DEFAULTS } from "../../shared/config/defaults.ts";
import { silentLogger } from "../../shared/logger.ts";
import { Secret } from "../../shared/secret.ts";
import { startPostgres } from "../../test/harness/postgres.ts";
import { postgresCpuMs } from "./cpu.ts";

export interface AggregatorReceiver {
  readonly url: string;
  readonly ratePerSecond: number;
  /** Rows stored for the agent, and how many distinct seqs among them. */
  /** CPU milliseconds PostgreSQL has used so far. */
  postgresCpuMs(): number;
  count(agentId: string): Promise<{ rows: number; distinct: number; minSeq: number; maxSeq: number }>;
  stop(): Promise<void>;
}

export async function startAggregatorReceiver(credentials: ServerCredentials): Promise<AggregatorReceiver> {
  // fsync on: the figure must hold for a database that keeps what it acked.
  const pg = await startPostgres({ fsync: true });
  try {
    const sql = connectDatabase({
      url: new Secret(await pg.createDatabase("drain")),
      poolSize: AGGREGATOR_DEFAULTS.databasePoolSize,
    });
    await migrate(sql);
    const ratePerSecond = AGGREGATOR_DEFAULTS.maxResultsPerSecondPerAgent;
    const server = await startIngestServer({
      listen: { host: "127.0.0.1", port: 0 },
      credentials,
      maxMessageBytes: AGGREGATOR_DEFAULTS.maxMessageBytes,
      deps: {
        sql,
        targets: new TargetCache(),
        metrics: new AggregatorMetrics({ processMetrics: false }),
        logger: silentLogger(),
        limits: new AgentRateLimits(ratePerSecond),
        settings: {
          insecure: false,
          maxFutureSkewMs: AGGREGATOR_DEFAULTS.maxFutureSkewSeconds * 1000,
          clockSkewWarnMs: AGGREGATOR_DEFAULTS.clockSkewWarnSeconds * 1000,
          lateAfterMs: AGGREGATOR_DEFAULTS.lateAfterSeconds * 1000,
          disabledAgents: new Set(),
          insertMethod: "copy",
          maxMessageBytes: AGGREGATOR_DEFAULTS.maxMessageBytes,
        },
        serverVersion: "bench",
      },
    });
    return {
      url: `127.0.0.1:${server.port}`,
      ratePerSecond,
      postgresCpuMs: () => postgresCpuMs(pg.dir),
      async count(agentId) {
        const [row] = await sql<{ rows: string; distinct: string; lo: string | null; hi: string | null }[]>`
          SELECT count(*)::text AS rows, count(DISTINCT seq)::text AS distinct,
                 min(seq)::text AS lo, max(seq)::text AS hi
          FROM results WHERE agent_id = ${agentId}`;
        return {
          rows: Number(row?.rows ?? 0),
          distinct: Number(row?.distinct ?? 0),
          minSeq: Number(row?.lo ?? 0),
          maxSeq: Number(row?.hi ?? 0),
        };
      },
      async stop() {
        await server.close(2_000);
        await closeDatabase(sql);
        await pg.stop();
      },
    };
  } catch (err) {
    await pg.stop();
    throw err;
  }
}
