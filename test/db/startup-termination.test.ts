// Every smbfleet backend terminated, again and again, while a real
// `smbfleet aggregator` starts on a fresh database and applies its
// migrations. The process must never exit: each migration transaction cut
// is a transient error that start-up retries, until the schema is current,
// /readyz answers 200, and an agent's results are stored exactly once.
//
// Bounded, and not a matter of timing. First the test holds the migrations'
// advisory lock, as a replica migrating at the same moment would: every
// migration attempt waits for it inside its transaction, so the terminations
// (every ROUND_MS) cut migration transactions, MIN_MIGRATION_CUTS of them
// (a failure after MAX_ROUNDS). Then the lock is released, and the rounds go on
// (FREE_ROUNDS at least) until start-up's next attempt has met them: cut
// again, or committed a migration. A whole migration run can fit between two
// rounds, so where that attempt is cut, if at all, is left to chance.
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadMigrations, MIGRATION_LOCK_KEY } from "../../aggregator/db/migrate.ts";
import type { AggregatorProcess, LogLine } from "../harness/fleet.ts";
import { until } from "../harness/wait.ts";
import { LOOPBACK } from "../harness/ports.ts";
import { startFleet, type Fleet } from "../fleet/fixture.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { drained, expectExactlyOnce } from "../fleet/verify.ts";

const ROUND_MS = 50;
/** Migration transactions terminated (the backend was inside one) while the lock is held. */
const MIN_MIGRATION_CUTS = 3;
/**
 * About 25 s in all. Start-up's backoff spaces its attempts 0.5, 1, 2, 4, 8,
 * 10 s apart: MIN_MIGRATION_CUTS take about 2 s, the attempt after them comes
 * within 10 s.
 */
const MAX_ROUNDS = 400;
/** Rounds after the lock is released, at least. */
const FREE_ROUNDS = 40;
const MIGRATE_APP = "smbfleet-aggregator-migrate";
/**
 * The terminations, then start-up's backoff (up to 10 s between attempts),
 * then maintenance and listeners, on a loaded 2-core box.
 */
const START_TIMEOUT_MS = 90_000;
const RETRY_MSG = "database unavailable while migrating; retrying";
/** 10 results every 50 ms, this many times, once the aggregator is up. */
const PRODUCE_TICKS = 20;

let fleet: Fleet;
beforeAll(async () => {
  fleet = await startFleet("startup_termination");
});
afterAll(async () => {
  await fleet?.close();
});

async function status(agg: AggregatorProcess, path: string): Promise<number> {
  const res = await fetch(`http://${LOOPBACK}:${agg.httpPort}${path}`, {
    signal: AbortSignal.timeout(5_000),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Versions in schema_migrations (none before the table exists). */
async function appliedVersions(): Promise<number[]> {
  const [t] = await fleet.sql<{ present: boolean }[]>`
    SELECT to_regclass('schema_migrations') IS NOT NULL AS present`;
  if (t?.present !== true) return [];
  const rows = await fleet.sql<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`;
  return rows.map((r) => r.version);
}

interface Terminations {
  rounds: number;
  /** Backends terminated, by application_name. */
  killed: Map<string, number>;
  /** Of those, migration backends that were inside a transaction. */
  migrationCuts: number;
}

/**
 * Terminates every smbfleet backend each ROUND_MS until done(t); throws after
 * MAX_ROUNDS in all, or as soon as startFailed() returns an error.
 */
async function terminateUntil(
  t: Terminations,
  done: () => boolean | Promise<boolean>,
  startFailed: () => unknown,
): Promise<void> {
  const summary = () =>
    `after ${t.rounds} rounds: ${t.migrationCuts} migration transactions cut; ` +
    `terminated ${JSON.stringify(Object.fromEntries(t.killed))}`;
  while (!(await done())) {
    if (t.rounds >= MAX_ROUNDS) throw new Error(`terminations not done ${summary()}`);
    if (startFailed() !== null)
      throw new Error(`the aggregator exited ${summary()}`, { cause: startFailed() });
    const rows = await fleet.sql<{ app: string; inTx: boolean; ok: boolean }[]>`
      SELECT application_name AS app, xact_start IS NOT NULL AS "inTx", pg_terminate_backend(pid) AS ok
      FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'smbfleet%'`;
    for (const r of rows) {
      if (!r.ok) continue;
      t.killed.set(r.app, (t.killed.get(r.app) ?? 0) + 1);
      if (r.app === MIGRATE_APP && r.inTx) t.migrationCuts++;
    }
    t.rounds++;
    await sleep(ROUND_MS);
  }
}

describe("smbfleet backends terminated while the aggregator starts and migrates", () => {
  it("never ends the aggregator, which migrates, becomes ready and ingests", async () => {
    const all = loadMigrations().map((m) => m.version);
    expect(await appliedVersions()).toEqual([]);

    // Started, not awaited: it resolves once /readyz answers 200, and rejects
    // if the process exits first.
    const abort = new AbortController();
    const starting = fleet.startAggregator({ startTimeoutMs: START_TIMEOUT_MS, signal: abort.signal });
    let startError: unknown = null;
    starting.catch((err: unknown) => {
      startError = err;
    });
    // One connection, so that the session lock and its release are on the same one.
    const locker = postgres(fleet.databaseUrl, { max: 1, onnotice: () => {} });
    const t: Terminations = { rounds: 0, killed: new Map(), migrationCuts: 0 };
    let cutsUnderLock: number;
    try {
      await locker`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY.toString()}::bigint)`;
      await terminateUntil(
        t,
        () => t.migrationCuts >= MIN_MIGRATION_CUTS,
        () => startError,
      );
      cutsUnderLock = t.migrationCuts;
      expect(await appliedVersions(), "applied while the lock was held").toEqual([]);
      await locker`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY.toString()}::bigint)`;
      const free = t.rounds + FREE_ROUNDS;
      await terminateUntil(
        t,
        async () =>
          t.rounds >= free && (t.migrationCuts > cutsUnderLock || (await appliedVersions()).length > 0),
        () => startError,
      );
    } catch (err) {
      // Not yet in the fleet's list, so close() would not stop it: stop it here.
      abort.abort();
      await starting.catch(() => undefined);
      throw err;
    } finally {
      await locker.end({ timeout: 2 });
    }
    const appliedAtLastKill = await appliedVersions();

    // The terminations are over: start-up must finish on its own.
    const agg = await starting;
    const pid = agg.pid;
    expect(await status(agg, "/readyz")).toBe(200);
    expect(await appliedVersions()).toEqual(all);

    // Each cut was retried as transient; nothing was reported as a failed migration or start.
    const retries = agg.logs.filter((l: LogLine) => l.msg === RETRY_MSG);
    expect(retries.length).toBeGreaterThan(0);
    expect(
      retries.filter(
        (l) => !["DB_UNAVAILABLE", "DB_COMMIT_UNKNOWN", "DB_CONFLICT"].includes(String(l["code"])),
      ),
    ).toEqual([]);
    expect(
      agg.logs.filter((l) => /failed to start|MIGRATION_FAILED/.test(`${l.msg} ${String(l["err"])}`)),
    ).toEqual([]);
    expect(agg.otherOutput.filter((l) => /TypeError|uncaught|unhandled/i.test(l))).toEqual([]);

    // And it ingests: an agent's results, each stored once.
    const agent = await fleet.startAgent({ site: "paris", agent: "paris-01", url: agg.url });
    agent.startProducing(10, 50, PRODUCE_TICKS);
    await until("the agent's results produced", () => agent.committed.size >= 10 * PRODUCE_TICKS, 30_000);
    await drained(agent, 60_000);
    await expectExactlyOnce(fleet.sql, agent);

    expect(agg.pid).toBe(pid);
    expect(agg.running()).toBe(true);
    expect(await status(agg, "/healthz")).toBe(200);
    console.log(
      `start-up termination: ${t.rounds} rounds, ${t.migrationCuts} migration transactions cut ` +
        `(${cutsUnderLock} waiting for the lock), ` +
        `terminated ${JSON.stringify(Object.fromEntries(t.killed))}; ${retries.length} start-up retries ` +
        `(${[...new Set(retries.map((l) => String(l["code"])))].join(", ")}); ` +
        `migrations applied at the last termination ${JSON.stringify(appliedAtLastKill)}; ` +
        `stored ${agent.committed.size} results`,
    );
  });
});
