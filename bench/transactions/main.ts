// npm run bench:transactions — what moving multi-statement transactions from
// postgres.js sql.begin() to withTransaction on node-postgres costs
// (docs/architecture.md, "Transactions against PostgreSQL").
//
// Both drivers run the same transaction (workload.ts) against the same
// PostgreSQL, with the pools the aggregator makes (connectDatabase,
// createTxPool): BENCH_WORKERS concurrent loops of BENCH_TX transactions
// each. One warm-up round of each, then BENCH_ROUNDS rounds measuring both,
// back to back, alternating which goes first; the medians are the result.
// Figures: transactions per second and this process's CPU per transaction;
// then the RSS that loading node-postgres next to postgres.js adds (rss.ts).
//
// fsync is off by default (BENCH_FSYNC=on to change it): with it on, each
// COMMIT waits for a WAL flush, which costs the same under either driver and
// hides what the drivers themselves cost. Parameters off their defaults make
// a validation run, e.g. BENCH_TX=100 BENCH_ROUNDS=1.
import { closeDatabase, connectDatabase } from "../../aggregator/db/connect.ts";
import { closeTxPool, createTxPool } from "../../aggregator/db/tx-pool.ts";
import { Secret } from "../../shared/secret.ts";
import { startPostgres } from "../../test/harness/postgres.ts";
import { loadAverage, startRun } from "../shared/run-info.ts";
import { Verdicts } from "../shared/verdict.ts";
import { measureRss } from "./rss.ts";
import { committed, createCounters, measure, type Driver, type Measured, type Pools } from "./workload.ts";

const DEFAULTS = {
  BENCH_WORKERS: 4,
  BENCH_TX: 1_000, // per worker, per round
  BENCH_ROUNDS: 5,
  BENCH_FSYNC: "off",
} as const;
const int = (name: "BENCH_WORKERS" | "BENCH_TX" | "BENCH_ROUNDS"): number => {
  const v = Number(process.env[name] ?? DEFAULTS[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name}: a positive integer, not ${process.env[name]}`);
  return v;
};
const WORKERS = int("BENCH_WORKERS");
const TX = int("BENCH_TX");
const ROUNDS = int("BENCH_ROUNDS");
const FSYNC = process.env["BENCH_FSYNC"] ?? DEFAULTS.BENCH_FSYNC;
if (FSYNC !== "on" && FSYNC !== "off") throw new Error(`BENCH_FSYNC: on or off, not ${FSYNC}`);
/** Fresh processes per RSS figure; the median is the result. */
const RSS_SAMPLES = 5;
/**
 * withTransaction must be no slower than sql.begin, which it replaces; 10 %
 * is the round-to-round spread of one driver on a shared 2-core machine.
 */
const GOAL_RATE_RATIO = 0.9;
const GOAL_CPU_RATIO = 1.1;

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const show = (driver: Driver, m: Measured): string =>
  `${driver} ${fmt(m.txPerSecond)} tx/s, ${m.cpuUsPerTx.toFixed(0)} µs CPU/tx`;

const run = startRun(
  "bench:transactions",
  ["postgres"],
  [
    { name: "BENCH_WORKERS", value: WORKERS, default: DEFAULTS.BENCH_WORKERS },
    { name: "BENCH_TX", value: TX, default: DEFAULTS.BENCH_TX },
    { name: "BENCH_ROUNDS", value: ROUNDS, default: DEFAULTS.BENCH_ROUNDS },
    { name: "BENCH_FSYNC", value: FSYNC, default: DEFAULTS.BENCH_FSYNC },
  ],
);
console.log(
  `PostgreSQL 15, fsync ${FSYNC}; ${WORKERS} workers × ${TX} transactions ` +
    `(BEGIN; SELECT … FOR UPDATE; UPDATE; COMMIT) per driver per round; ${ROUNDS} rounds after a warm-up`,
);

const pg = await startPostgres({ fsync: FSYNC === "on" });
const url = new Secret(await pg.createDatabase("bench_transactions"));
const pools: Pools = {
  js: connectDatabase({ url, poolSize: WORKERS, applicationName: "smbfleet-bench-postgres-js" }),
  pg: createTxPool({ url, max: WORKERS, applicationName: "smbfleet-bench-pg" }),
};
try {
  await createCounters(pools.js, WORKERS);
  for (const d of ["withTransaction", "sql.begin"] as const) await measure(d, pools, WORKERS, TX);

  const results: Record<Driver, Measured[]> = { "sql.begin": [], withTransaction: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate which goes first, so neither always meets the other's aftermath (WAL, autovacuum).
    const order: Driver[] =
      round % 2 === 1 ? ["sql.begin", "withTransaction"] : ["withTransaction", "sql.begin"];
    const line: string[] = [];
    for (const d of order) {
      const m = await measure(d, pools, WORKERS, TX);
      results[d].push(m);
      line.push(show(d, m));
    }
    const ratio = results.withTransaction.at(-1)!.txPerSecond / results["sql.begin"].at(-1)!.txPerSecond;
    console.log(
      `round ${round} (load average ${loadAverage()}): ${line.join("; ")}; rate ratio ${ratio.toFixed(2)}`,
    );
  }
  // Every transaction of every round, warm-up included, committed its increment.
  const expected = BigInt((ROUNDS + 1) * 2 * WORKERS * TX);
  const got = await committed(pools.js);
  if (got !== expected) throw new Error(`counters sum to ${got}, not the ${expected} transactions run`);

  const med = (d: Driver, f: keyof Measured): number => median(results[d].map((m) => m[f]));
  const rate = { pg: med("withTransaction", "txPerSecond"), js: med("sql.begin", "txPerSecond") };
  const cpu = { pg: med("withTransaction", "cpuUsPerTx"), js: med("sql.begin", "cpuUsPerTx") };
  const rss = measureRss(RSS_SAMPLES);
  console.log(
    `result (medians of ${ROUNDS} rounds): withTransaction ${fmt(rate.pg)} tx/s, ${cpu.pg.toFixed(0)} µs CPU/tx; ` +
      `sql.begin ${fmt(rate.js)} tx/s, ${cpu.js.toFixed(0)} µs CPU/tx`,
  );
  console.log(
    `RSS of a fresh Node process (median of ${RSS_SAMPLES}): postgres.js loaded ${mb(rss.postgresJs)}, ` +
      `postgres.js and pg ${mb(rss.both)}: pg adds ${mb(rss.both - rss.postgresJs)} ` +
      `(samples ${rss.samples.postgresJs.map(mb).join(", ")} / ${rss.samples.both.map(mb).join(", ")})`,
  );

  const verdicts = new Verdicts();
  verdicts.add({
    figure: `withTransaction (pg) rate, median of ${ROUNDS} rounds`,
    value: `${fmt(rate.pg)} tx/s`,
    baseline: `sql.begin (postgres.js) ${fmt(rate.js)} tx/s`,
    ratio: (rate.pg / rate.js).toFixed(2),
    goal: `ratio ≥ ${GOAL_RATE_RATIO}`,
    holds: rate.pg / rate.js >= GOAL_RATE_RATIO,
  });
  verdicts.add({
    figure: `withTransaction (pg) client CPU per transaction, median of ${ROUNDS} rounds`,
    value: `${cpu.pg.toFixed(0)} µs`,
    baseline: `sql.begin (postgres.js) ${cpu.js.toFixed(0)} µs`,
    ratio: (cpu.pg / cpu.js).toFixed(2),
    goal: `ratio ≤ ${GOAL_CPU_RATIO}`,
    holds: cpu.pg / cpu.js <= GOAL_CPU_RATIO,
  });
  verdicts.print();
} finally {
  await closeDatabase(pools.js);
  await closeTxPool(pools.pg);
  await pg.stop();
  run.end();
}
