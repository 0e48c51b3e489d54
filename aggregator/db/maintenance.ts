// The periodic database job: partitions ahead, the 5-minute rollup, and
// retention. Every replica runs it; the steps are idempotent and the rollup
// takes a try-lock, so replicas neither collide nor double-count. Every step
// is a transaction (withTransaction) on the maintenance pool: a step whose
// connection dies fails whole, is logged with its code, and runs again on
// the next tick.
import { SmbfleetError, errorMessage } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import { applyRetention, ensurePartitions } from "./partitions.ts";
import type { TxConnector } from "./transaction.ts";
import { rollup5m } from "./rollup.ts";

export interface MaintenanceOptions {
  rawDays: number;
  rollupDays: number;
  /** How often the job runs. */
  intervalMs?: number;
  /** Partitions kept ready ahead of today. */
  aheadDays?: number;
  /** Partitions made behind today (for late results after a first start). */
  behindDays?: number;
  /** Injected clock, for tests. */
  now?: () => Date;
}

/**
 * Once a minute: rollups trail real time by about ROLLUP_SETTLE_SECONDS plus
 * this, and the queries touch only rows received since the last run.
 */
export const DEFAULT_MAINTENANCE_INTERVAL_MS = 60_000;
/** Two days ahead: a maintenance outage of a whole day still never routes today's results to DEFAULT. */
export const DEFAULT_PARTITIONS_AHEAD_DAYS = 2;
/** Yesterday too, so results buffered across midnight during the first start get a real partition. */
export const DEFAULT_PARTITIONS_BEHIND_DAYS = 1;

export interface Maintenance {
  /** Runs all steps once now; resolves when done (errors are logged, not thrown). */
  runOnce(): Promise<boolean>;
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

/**
 * SMBFLEET_MAINTENANCE_INTERVAL_MS, when set: how often the job runs instead
 * of DEFAULT_MAINTENANCE_INTERVAL_MS. Tests run it every few hundred
 * milliseconds (test/db/backend-termination.test.ts); operators have no need to.
 */
export function maintenanceIntervalFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env["SMBFLEET_MAINTENANCE_INTERVAL_MS"];
  if (raw === undefined || raw === "") return undefined;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 10) {
    throw new SmbfleetError(
      "CONFIG_INVALID",
      `SMBFLEET_MAINTENANCE_INTERVAL_MS: expected an integer of at least 10 (milliseconds), got ${JSON.stringify(raw)}`,
    );
  }
  return ms;
}

export function startMaintenance(pool: TxConnector, logger: Logger, opts: MaintenanceOptions): Maintenance {
  const now = opts.now ?? (() => new Date());
  const intervalMs = opts.intervalMs ?? DEFAULT_MAINTENANCE_INTERVAL_MS;
  let running: Promise<boolean> | null = null;
  let stopped = false;

  const steps = async (): Promise<boolean> => {
    let ok = true;
    const step = async (name: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        const result = await fn();
        logger.debug({ step: name, result }, "maintenance step done");
      } catch (err) {
        ok = false;
        const code = (err as { code?: unknown }).code;
        logger.warn(
          { step: name, code: typeof code === "string" ? code : undefined, err: errorMessage(err) },
          "maintenance step failed; retrying next run",
        );
      }
    };
    const t = now();
    await step("partitions", async () => {
      const created = await ensurePartitions(pool, t, {
        aheadDays: opts.aheadDays ?? DEFAULT_PARTITIONS_AHEAD_DAYS,
        behindDays: opts.behindDays ?? DEFAULT_PARTITIONS_BEHIND_DAYS,
      });
      if (created.length > 0) logger.info({ created }, "results partitions created");
    });
    await step("rollup", () => rollup5m(pool));
    await step("retention", async () => {
      const r = await applyRetention(pool, t, { rawDays: opts.rawDays, rollupDays: opts.rollupDays });
      if (r.droppedPartitions.length > 0)
        logger.info({ dropped: r.droppedPartitions }, "results partitions dropped");
    });
    return ok;
  };

  const runOnce = (): Promise<boolean> => {
    running ??= steps().finally(() => {
      running = null;
    });
    return running;
  };

  const timer = setInterval(() => {
    if (!stopped) void runOnce();
  }, intervalMs);
  timer.unref();

  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
