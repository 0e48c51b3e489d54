// npm run bench:ingest — issue 3, acceptance 4: end-to-end ingest results/s
// and, in the same run against the same PostgreSQL, the raw COPY ceiling.
//
//   end-to-end (end-to-end.ts): `smbfleet aggregator` as its own process
//     (mTLS, real config), AGENTS simulated agents in this process, each with
//     its own certificate and stream, sending batches of BATCH results with
//     WINDOW batches in flight; counted when acked (= committed).
//   ceiling (copy-ceiling.ts): postgres.js `COPY results FROM STDIN` of the
//     same rows (same columns, same JSON, same partitions and indexes: a
//     fresh database with the same migrations) over AGENTS connections, BATCH
//     rows per COPY, and once more as 2 × 10000-row COPYs; the higher figure
//     is the ceiling.
// The machine is shared: other work comes and goes within seconds, and a
// ratio of two figures measured a minute apart can swing either way. So
// ROUNDS rounds each measure both, back to back, in alternating order; each
// round's ratio is printed and the median is the result (goal ≥ 0.5).
// Bounded: RESULTS per agent, and every phase has a deadline. Parameters are
// BENCH_AGENTS, BENCH_BATCH, BENCH_WINDOW, BENCH_RESULTS and BENCH_ROUNDS
// (defaults below); a short run (e.g. BENCH_RESULTS=5000 BENCH_ROUNDS=1)
// checks the script and is labelled a validation run.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { closeDatabase, connectDatabase } from "../../aggregator/db/connect.ts";
import { migrateUrl } from "../../aggregator/db/migrate.ts";
import { Secret } from "../../shared/secret.ts";
import { clientCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles } from "../../shared/tls/files.ts";
import { initCa, issueAgent, issueServer } from "../../shared/tls/pki.ts";
import { startPostgres, type RunningPostgres } from "../../test/harness/postgres.ts";
import { copyCeiling } from "./copy-ceiling.ts";
import { endToEnd, type EndToEndResult } from "./end-to-end.ts";
import { postmasterPid, treeCpuSeconds } from "./process-cpu.ts";
import { startRun } from "../shared/run-info.ts";
import { Verdicts } from "../shared/verdict.ts";

// Parameters (environment; any value off its default makes a validation run, not a result).
const DEFAULTS = {
  BENCH_AGENTS: 4,
  BENCH_BATCH: 500,
  BENCH_WINDOW: 8, // the agent sender's default (agent/pusher/options.ts)
  BENCH_RESULTS: 100_000, // per agent
  BENCH_ROUNDS: 3,
} as const;
const env = (name: keyof typeof DEFAULTS): number => {
  const v = Number(process.env[name] ?? DEFAULTS[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name}: a positive integer, not ${process.env[name]}`);
  return v;
};
const AGENTS = env("BENCH_AGENTS");
const BATCH = env("BENCH_BATCH");
const WINDOW = env("BENCH_WINDOW");
const RESULTS = env("BENCH_RESULTS");
const ROUNDS = env("BENCH_ROUNDS");
const GOAL_RATIO = 0.5;
const TARGETS = 10;
const DEADLINE_MS = 180_000;
const TOTAL = AGENTS * RESULTS;

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const perResult = (cpuSeconds: number): string => ((cpuSeconds / TOTAL) * 1e6).toFixed(1);

interface Ceiling {
  same: number;
  large: number;
  /** PostgreSQL CPU seconds during each. */
  cpuSame: number;
  cpuLarge: number;
}

async function ceiling(pg: RunningPostgres, pgPid: number, database: string): Promise<Ceiling> {
  const url = new Secret(await pg.createDatabase(database));
  const sql = connectDatabase({ url, poolSize: AGENTS });
  try {
    await migrateUrl(url);
    const c0 = treeCpuSeconds(pgPid);
    const same = await copyCeiling(sql, {
      connections: AGENTS,
      rowsPerCopy: BATCH,
      total: TOTAL,
      targets: TARGETS,
    });
    const c1 = treeCpuSeconds(pgPid);
    await sql`TRUNCATE results`;
    const c2 = treeCpuSeconds(pgPid);
    const large = await copyCeiling(sql, {
      connections: 2,
      rowsPerCopy: 10_000,
      total: TOTAL,
      targets: TARGETS,
    });
    return { same, large, cpuSame: c1 - c0, cpuLarge: treeCpuSeconds(pgPid) - c2 };
  } finally {
    await closeDatabase(sql);
  }
}

function printEndToEnd(e: EndToEndResult): void {
  const busy = (e.cpu.aggregator + e.cpu.postgres + e.cpu.agents) / e.seconds;
  console.log(
    `  end-to-end: ${fmt(e.rate)} results/s (${TOTAL} in ${e.seconds.toFixed(2)} s; stored ${e.stored}, ` +
      `distinct ${e.distinct}, reconnects ${e.reconnects}, aggregator exit ${e.exitCode}); ` +
      `ack p50 ${percentile(e.latencies, 50).toFixed(0)} ms, p99 ${percentile(e.latencies, 99).toFixed(0)} ms`,
  );
  console.log(
    `    CPU µs/result: aggregator ${perResult(e.cpu.aggregator)}, PostgreSQL ${perResult(e.cpu.postgres)}, ` +
      `simulated agents ${perResult(e.cpu.agents)} (${busy.toFixed(2)} of ${cpus().length} cores busy)`,
  );
}

function printCeiling(c: Ceiling): void {
  console.log(
    `  raw COPY: ${fmt(c.same)} rows/s (${AGENTS} × ${BATCH}-row COPYs), ${fmt(c.large)} rows/s (2 × 10000-row COPYs); ` +
      `PostgreSQL CPU µs/row ${perResult(c.cpuSame)} and ${perResult(c.cpuLarge)}`,
  );
}

const run = startRun(
  "bench:ingest",
  ["postgres"],
  (Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]).map((name) => ({
    name,
    value: env(name),
    default: DEFAULTS[name],
  })),
);
const dir = mkdtempSync(join(tmpdir(), "smbfleet-bench-ingest-"));
const pg = await startPostgres({ fsync: true });
const pgPid = postmasterPid(join(pg.dir, "data"));
console.log(
  `PostgreSQL 15, fsync on; ${AGENTS} agents × ${RESULTS} results, batches of ${BATCH}, window ${WINDOW}; ` +
    `${ROUNDS} rounds`,
);

try {
  await initCa(dir);
  const server = await issueServer(dir, { dns: ["localhost"], ip: ["127.0.0.1"] });
  const agents = await Promise.all(
    Array.from({ length: AGENTS }, async (_, i) =>
      clientCredentials(
        await loadTlsFiles(await issueAgent(dir, { site: "bench", agent: `bench-${i + 1}` })),
      ),
    ),
  );
  // BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the aggregator.
  const nodeArgs = (process.env["BENCH_NODE_ARGS"] ?? "").split(" ").filter((a) => a !== "");
  const rates: number[] = [];
  const ceilings: number[] = [];
  const ratios: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round} (load average ${load()}):`);
    const runE2e = () =>
      endToEnd({
        pg,
        pgPid,
        dir,
        database: `bench_e2e_${round}`,
        server,
        agents,
        resultsPerAgent: RESULTS,
        batch: BATCH,
        window: WINDOW,
        targets: TARGETS,
        deadlineMs: DEADLINE_MS,
        nodeArgs,
      });
    let e: EndToEndResult;
    let c: Ceiling;
    // Alternate which goes first, so neither always meets the other's aftermath (WAL, checkpoints).
    if (round % 2 === 1) {
      e = await runE2e();
      printEndToEnd(e);
      c = await ceiling(pg, pgPid, `bench_copy_${round}`);
      printCeiling(c);
    } else {
      c = await ceiling(pg, pgPid, `bench_copy_${round}`);
      printCeiling(c);
      e = await runE2e();
      printEndToEnd(e);
    }
    if (e.stored !== TOTAL || e.distinct !== TOTAL)
      throw new Error(`round ${round}: stored ${e.stored} of ${TOTAL}`);
    const top = Math.max(c.same, c.large);
    rates.push(e.rate);
    ceilings.push(top);
    ratios.push(e.rate / top);
    console.log(`  ratio ${(e.rate / top).toFixed(2)} (ceiling ${fmt(top)} rows/s)`);
  }
  console.log(
    `result: end-to-end ${fmt(median(rates))} results/s, ceiling ${fmt(median(ceilings))} rows/s (medians); ` +
      `ratio per round ${ratios.map((r) => r.toFixed(2)).join(", ")}; median ${median(ratios).toFixed(2)} (goal ≥ ${GOAL_RATIO})`,
  );
  const verdicts = new Verdicts();
  verdicts.add({
    figure: `end-to-end ingest, median of ${ROUNDS} rounds`,
    value: `${fmt(median(rates))} results/s`,
    baseline: `raw COPY ${fmt(median(ceilings))} rows/s`,
    ratio: `${median(ratios).toFixed(2)} (rounds ${ratios.map((r) => r.toFixed(2)).join(", ")})`,
    goal: `ratio ≥ ${GOAL_RATIO}`,
    holds: median(ratios) >= GOAL_RATIO,
  });
  verdicts.print();
} finally {
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
  run.end();
}
