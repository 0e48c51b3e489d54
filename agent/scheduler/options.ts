// The scheduler's own limits, each with its reason. The two operator-facing
// limits (max_concurrent_runs, max_spawns_per_second) come from agent.toml.

export interface SchedulerLimits {
  /**
   * The scheduler aborts a run this long after the target's own run timeout
   * should have ended it. The check kills its process on timeout itself;
   * this is the second line of defence so that no loop can hang forever.
   */
  watchdogGraceMs: number;
  /**
   * After that abort, a run still not finished this much later is reported
   * as an "internal" result and logged as stuck. The loop keeps waiting for
   * it (never two runs of one target at once) and counts missed slots.
   */
  stuckReportMs: number;
  /** stop() waits this long for aborted runs to end, then returns anyway (logging what is left). */
  stopWaitMs: number;
}

export const DEFAULT_SCHEDULER_LIMITS: SchedulerLimits = {
  // 5 s: well above smbclient's kill-and-reap time, far below any interval.
  watchdogGraceMs: 5_000,
  // 10 s: a killed smbclient is reaped in milliseconds; 10 s means a real bug.
  stuckReportMs: 10_000,
  // 10 s: shutdown must finish well inside a service manager's stop timeout (systemd: 90 s).
  stopWaitMs: 10_000,
};

/** Up to one second's worth of spawns may start at once (e.g. at agent start). */
export function spawnBurst(maxSpawnsPerSecond: number): number {
  return Math.max(1, Math.floor(maxSpawnsPerSecond));
}
