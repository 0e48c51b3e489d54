// The aggregator side of one bench/drain run: a fresh database on the
// harness PostgreSQL (fsync on: the figure must hold for a database that
// keeps what it acked), and `smbfleet aggregator` as its own process with its
// default config on ports reserved up front, so that the agent can be
// configured for it while it is still down. Progress is read from the
// agent's high-water sequence (one row); the exactly-once check reads the
// stored seqs once, at the end.
import { closeDatabase, connectDatabase } from "../../aggregator/db/connect.ts";
import { Secret } from "../../shared/secret.ts";
import {
  startAggregatorProcess,
  type AggregatorProcess,
  type FleetPki,
  type LogLine,
} from "../../test/harness/fleet.ts";
import { freePort, LOOPBACK } from "../../test/harness/ports.ts";
import type { RunningPostgres } from "../../test/harness/postgres.ts";
import { postgresCpuMs, processCpuMs } from "./cpu.ts";

export interface StoredCheck {
  /** Rows with seq 1..n, and how many distinct seqs among them. */
  rows: number;
  distinct: number;
  /** n − distinct, and rows − distinct. */
  missing: number;
  duplicated: number;
  /** Rows above n: results of the agent's own probes during the run. */
  later: number;
  quarantined: number;
}

export interface AggregatorSide {
  /** host:port the agent is configured with before the aggregator runs. */
  readonly url: string;
  /** Starts the aggregator; resolves once /readyz answers and gRPC accepts. */
  start(): Promise<void>;
  readonly grpcPort: number;
  /** The agent's high-water sequence (0 before its first batch). */
  highWater(agent: string): Promise<number>;
  check(agent: string, n: number): Promise<StoredCheck>;
  /** CPU ms so far of the aggregator process and of PostgreSQL (postmaster, backends, reaped ones). */
  cpuMs(): { aggregator: number; postgres: number };
  /** The aggregator's JSON log lines so far (bounded by the harness). */
  logs(): readonly LogLine[];
  /** Stops the aggregator and drops the database; idempotent. */
  close(): Promise<void>;
}

export async function prepareAggregatorSide(
  pg: RunningPostgres,
  database: string,
  dir: string,
  pki: FleetPki,
): Promise<AggregatorSide> {
  const databaseUrl = await pg.createDatabase(database);
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const sql = connectDatabase({ url: new Secret(databaseUrl), poolSize: 1 });
  let aggregator: AggregatorProcess | null = null;
  let closed = false;
  return {
    url: `${LOOPBACK}:${grpcPort}`,
    grpcPort,
    async start() {
      aggregator = await startAggregatorProcess({ dir, pki, databaseUrl, grpcPort, httpPort });
    },
    async highWater(agent) {
      const [row] = await sql<{ hw: string }[]>`
        SELECT high_water_seq::text AS hw FROM agents WHERE agent_id = ${agent}`;
      return Number(row?.hw ?? 0);
    },
    async check(agent, n) {
      const [r] = await sql<{ rows: string; distinct: string; later: string }[]>`
        SELECT count(*) FILTER (WHERE seq <= ${n})::text AS rows,
               count(DISTINCT seq) FILTER (WHERE seq <= ${n})::text AS distinct,
               count(*) FILTER (WHERE seq > ${n})::text AS later
        FROM results WHERE agent_id = ${agent}`;
      const [qr] = await sql<{ n: string }[]>`
        SELECT count(*)::text AS n FROM quarantined_results WHERE agent_id = ${agent}`;
      const rows = Number(r?.rows ?? 0);
      const distinct = Number(r?.distinct ?? 0);
      return {
        rows,
        distinct,
        missing: n - distinct,
        duplicated: rows - distinct,
        later: Number(r?.later ?? 0),
        quarantined: Number(qr?.n ?? 0),
      };
    },
    logs: () => aggregator?.logs ?? [],
    cpuMs: () => ({
      aggregator: aggregator === null ? 0 : processCpuMs(aggregator.pid),
      postgres: postgresCpuMs(pg.dir),
    }),
    async close() {
      if (closed) return;
      closed = true;
      await closeDatabase(sql);
      await aggregator?.stop();
      const admin = connectDatabase({ url: new Secret(pg.url), poolSize: 1 });
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${database}`);
      } finally {
        await closeDatabase(admin);
      }
    },
  };
}
