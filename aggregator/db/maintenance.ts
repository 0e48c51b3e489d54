// The periodic database job: partitions ahead, the 5-minute rollup, and
// retention. Every replica runs it; the steps are idempotent and the rollup
// takes a try-lock, so replicas neither collide nor double-count.
import { errorMessage } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import type { Db } from "./connect.ts";
import { applyRetention, ensurePartitions } from "./partitions.ts";
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

export function startMaintenance(sql: Db, logger: Logger, opts: MaintenanceOptions): Maintenance {
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
        logger.warn({ step: name, err: errorMessage(err) }, "maintenance step failed; retrying next run");
      }
    };
    const t = now();
    await step("partitions", async () => {
      const created = await ensurePartitions(sql, t, {
        aheadDays: opts.aheadDays ?? DEFAULT_PARTITIONS_AHEAD_DAYS,
        behindDays: opts.behindDays ?? DEFAULT_PARTITIONS_BEHIND_DAYS,
      });
      if (created.length > 0) logger.info({ created }, "results partitions created");
    });
    await step("rollup", () => rollup5m(sql));
    await step("retention", async () => {
      const r = await applyRetention(sql, t, { rawDays: opts.rawDays, rollupDays: opts.rollupDays });
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
