// What every fleet fault test starts with: a real PostgreSQL, the fleet PKI,
// a temp dir, and bookkeeping so that close() stops every aggregator,
// synthetic agent and proxy the test started, whatever happened in it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createFleetPki,
  startAggregatorProcess,
  testSql,
  type AggregatorOptions,
  type AggregatorProcess,
  type FleetPki,
  type Sql,
} from "../harness/fleet.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { startSyntheticAgent, type SyntheticAgent, type SyntheticAgentOptions } from "./synthetic-agent.ts";

export interface Fleet {
  pg: RunningPostgres;
  dir: string;
  pki: FleetPki;
  databaseUrl: string;
  /** The test's own connection to the aggregator's database. */
  sql: Sql;
  startAggregator(opts?: Partial<AggregatorOptions>): Promise<AggregatorProcess>;
  startAgent(opts: Omit<SyntheticAgentOptions, "pki" | "dir">): Promise<SyntheticAgent>;
  /** Runs at close(), before anything else is stopped (proxies, child agents). */
  onClose(fn: () => Promise<unknown>): void;
  close(): Promise<void>;
}

export async function startFleet(database: string): Promise<Fleet> {
  const pg = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), "smbfleet-fleet-"));
  const pki = await createFleetPki(join(dir, "pki"));
  const databaseUrl = await pg.createDatabase(database);
  const sql = testSql(databaseUrl);
  const aggregators: AggregatorProcess[] = [];
  const agents: SyntheticAgent[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  // Counted before the await, so replicas started together get distinct names (and config files).
  let started = 0;
  return {
    pg,
    dir,
    pki,
    databaseUrl,
    sql,
    async startAggregator(opts = {}) {
      const agg = await startAggregatorProcess({
        dir: join(dir, "aggregator"),
        pki,
        databaseUrl,
        name: `aggregator-${++started}`,
        ...opts,
      });
      aggregators.push(agg);
      return agg;
    },
    async startAgent(opts) {
      const agent = await startSyntheticAgent({ ...opts, pki, dir: join(dir, "agents") });
      agents.push(agent);
      return agent;
    },
    onClose(fn) {
      closers.push(fn);
    },
    async close() {
      for (const fn of closers) await fn().catch(() => undefined);
      for (const a of agents) await a.close().catch(() => undefined);
      for (const agg of aggregators) {
        await agg.kill("SIGKILL");
        agg.releasePorts();
      }
      await sql.end({ timeout: 2 });
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
