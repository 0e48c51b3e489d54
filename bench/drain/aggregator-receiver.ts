// The real target of a drain: `smbfleet aggregator` as its own process (mTLS,
// identity from the certificate, ack after commit, its default limits:
// maxResultsPerSecondPerAgent, maxMessageBytes, pool size) on a harness
// PostgreSQL with fsync on.
import { closeDatabase, connectDatabase } from "../../aggregator/db/connect.ts";
import { AGGREGATOR_DEFAULTS } from "../../shared/config/defaults.ts";
import { Secret } from "../../shared/secret.ts";
import { startAggregatorProcess, type FleetPki } from "../../test/harness/fleet.ts";
import { startPostgres } from "../../test/harness/postgres.ts";
import { postgresCpuMs, processCpuMs } from "./cpu.ts";

export interface AggregatorReceiver {
  readonly url: string;
  readonly ratePerSecond: number;
  /** CPU milliseconds used so far by the aggregator process and by PostgreSQL. */
  cpuMs(): { aggregator: number; postgres: number };
  /** Rows stored for the agent, and how many distinct seqs among them. */
  count(agentId: string): Promise<{ rows: number; distinct: number; minSeq: number; maxSeq: number }>;
  stop(): Promise<void>;
}

export async function startAggregatorReceiver(dir: string, pki: FleetPki): Promise<AggregatorReceiver> {
  // fsync on: the figure must hold for a database that keeps what it acked.
  const pg = await startPostgres({ fsync: true });
  try {
    const databaseUrl = await pg.createDatabase("drain");
    const aggregator = await startAggregatorProcess({ dir, pki, databaseUrl });
    const sql = connectDatabase({ url: new Secret(databaseUrl), poolSize: 1 });
    return {
      url: aggregator.url,
      ratePerSecond: AGGREGATOR_DEFAULTS.maxResultsPerSecondPerAgent,
      cpuMs: () => ({ aggregator: processCpuMs(aggregator.pid), postgres: postgresCpuMs(pg.dir) }),
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
        await closeDatabase(sql);
        await aggregator.stop();
        await pg.stop();
      },
    };
  } catch (err) {
    await pg.stop();
    throw err;
  }
}
