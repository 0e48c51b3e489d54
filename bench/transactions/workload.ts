// The transaction both drivers run, as the incident engine will: read a row
// under FOR UPDATE, decide in TypeScript, write it back, commit. Each worker
// owns its row, so the figures are the drivers' cost, not lock waits.
//
//   BEGIN; SELECT n FROM bench_counter WHERE id = $1 FOR UPDATE;
//   UPDATE bench_counter SET n = $2 WHERE id = $1; COMMIT
import type { Db } from "../../aggregator/db/connect.ts";
import { withTransaction } from "../../aggregator/db/transaction.ts";
import type { TxPool } from "../../aggregator/db/tx-pool.ts";

export type Driver = "sql.begin" | "withTransaction";

export interface Pools {
  /** postgres.js, as connectDatabase makes it: the baseline. */
  js: Db;
  /** node-postgres, as createTxPool makes it. */
  pg: TxPool;
}

export interface Measured {
  txPerSecond: number;
  /** This process's user + system CPU per transaction, µs. */
  cpuUsPerTx: number;
}

export async function createCounters(js: Db, workers: number): Promise<void> {
  await js`CREATE TABLE bench_counter (id int PRIMARY KEY, n bigint NOT NULL)`;
  await js`INSERT INTO bench_counter SELECT g, 0 FROM generate_series(1, ${workers}) g`;
}

/** Sum of every counter: one per committed transaction. */
export async function committed(js: Db): Promise<bigint> {
  const [row] = await js`SELECT coalesce(sum(n), 0)::int8 AS n FROM bench_counter`;
  return row?.["n"] as bigint;
}

async function oneTransaction(driver: Driver, pools: Pools, id: number): Promise<void> {
  if (driver === "withTransaction") {
    await withTransaction(pools.pg, async (tx) => {
      const [row] = await tx.query<{ n: bigint }>("SELECT n FROM bench_counter WHERE id = $1 FOR UPDATE", [
        id,
      ]);
      await tx.execute("UPDATE bench_counter SET n = $2 WHERE id = $1", [id, row!.n + 1n]);
    });
  } else {
    await pools.js.begin(async (tx) => {
      const [row] = await tx`SELECT n FROM bench_counter WHERE id = ${id} FOR UPDATE`;
      await tx`UPDATE bench_counter SET n = ${(row!["n"] as bigint) + 1n} WHERE id = ${id}`;
    });
  }
}

/** `workers` concurrent loops of `perWorker` transactions each; wall-clock rate and client CPU. */
export async function measure(
  driver: Driver,
  pools: Pools,
  workers: number,
  perWorker: number,
): Promise<Measured> {
  const total = workers * perWorker;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < perWorker; i++) await oneTransaction(driver, pools, w + 1);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { txPerSecond: total / seconds, cpuUsPerTx: (cpu.user + cpu.system) / total };
}
