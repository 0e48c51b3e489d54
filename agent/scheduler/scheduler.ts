// Runs every target at a fixed rate: slot k of a target starts at
// t0 + phase + k·interval (+ a small per-run jitter), never "interval after
// the previous run ended", so a slow share does not drift its own schedule.
// One loop per target; a run that overruns into the next slot makes that slot
// a missed run (counted), never a second concurrent run. All loops share one
// concurrency cap and one spawn-rate limit. Nothing a check or a sink throws
// can end a loop: it becomes a result of class "internal" and a log line.
// The scheduler never imports SMB code: it sees only the Check contract.
import type { ProbeTarget } from "../../shared/config/types.ts";
import { SmbfleetError, errorMessage } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import { targetKey, type ProbeResult } from "../../shared/result.ts";
import type { Check } from "../checks/types.ts";
import { realClock, type Clock } from "./clock.ts";
import { ConcurrencyLimit } from "./concurrency-limit.ts";
import { targetRefOf } from "../../shared/config/target-ref.ts";
import { internalResult } from "./internal-result.ts";
import { DEFAULT_SCHEDULER_LIMITS, spawnBurst, type SchedulerLimits } from "./options.ts";
import { phaseOffsetMs, runJitterMs } from "./phase.ts";
import { TokenBucket } from "./token-bucket.ts";

/** Where results go: local metrics, logs, the durable buffer. Must not block. */
export type ResultSink = (result: ProbeResult) => void;

/** Hooks for the agent's own metrics; all optional. */
export interface SchedulerObserver {
  /** A run got its slot and token; lagMs is how late it started against its planned time. */
  runStarted?(target: ProbeTarget, lagMs: number): void;
  /** Slots that passed while the previous run of this target was still going. */
  runsMissed?(target: ProbeTarget, count: number): void;
  inFlightChanged?(inFlight: number): void;
}

export interface SchedulerOptions {
  check: Check;
  targets: readonly ProbeTarget[];
  sinks: readonly ResultSink[];
  maxConcurrentRuns: number;
  maxSpawnsPerSecond: number;
  logger: Logger;
  /** Mixed into each target's phase so that agents probing one share do not fire together. */
  phaseSeed?: string;
  observer?: SchedulerObserver;
  clock?: Clock;
  random?: () => number;
  limits?: Partial<SchedulerLimits>;
}

export interface TargetStats {
  name: string;
  /** Runs whose result reached the sinks. */
  completedRuns: number;
  missedRuns: number;
  /** How late the last run started against its planned time, ms. */
  lastLagMs: number | null;
  maxLagMs: number;
}

export class Scheduler {
  readonly #opts: SchedulerOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #limits: SchedulerLimits;
  readonly #cap: ConcurrencyLimit;
  readonly #spawns: TokenBucket;
  readonly #stop = new AbortController();
  readonly #stats = new Map<string, TargetStats>();
  #loops: Promise<void>[] = [];
  #inFlight = 0;
  #started = false;

  constructor(opts: SchedulerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    this.#random = opts.random ?? Math.random;
    this.#limits = { ...DEFAULT_SCHEDULER_LIMITS, ...opts.limits };
    this.#cap = new ConcurrencyLimit(opts.maxConcurrentRuns);
    this.#spawns = new TokenBucket(opts.maxSpawnsPerSecond, spawnBurst(opts.maxSpawnsPerSecond), this.#clock);
    for (const t of opts.targets) {
      this.#stats.set(targetKey(targetRefOf(t)), {
        name: t.name,
        completedRuns: 0,
        missedRuns: 0,
        lastLagMs: null,
        maxLagMs: 0,
      });
    }
  }

  /** Starts one loop per target. Aborting `signal` is the same as stop(). */
  start(signal?: AbortSignal): void {
    if (this.#started) throw new Error("scheduler already started");
    this.#started = true;
    signal?.addEventListener("abort", () => this.#stop.abort(signal.reason), { once: true });
    if (signal?.aborted) this.#stop.abort(signal.reason);
    const t0 = this.#clock.now();
    this.#loops = this.#opts.targets.map((t) => this.#loop(t, t0));
  }

  /**
   * Stops scheduling, aborts runs in flight (their results are dropped) and
   * waits for every loop, at most limits.stopWaitMs: a check that ignores its
   * signal must not hang the agent's shutdown.
   */
  async stop(): Promise<void> {
    this.#stop.abort(new Error("scheduler stopped"));
    const wait = new AbortController();
    const allDone = Promise.all(this.#loops).then(() => true);
    const timedOut = this.#clock.sleep(this.#limits.stopWaitMs, wait.signal).then(() => false);
    const done = await Promise.race([allDone, timedOut]);
    wait.abort();
    if (!done) {
      this.#opts.logger.error(
        { inFlight: this.#inFlight, waitedMs: this.#limits.stopWaitMs },
        "runs still going after shutdown wait; leaving them",
      );
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Per target, keyed by targetKey. */
  stats(): ReadonlyMap<string, Readonly<TargetStats>> {
    return this.#stats;
  }

  /** True once every target has delivered at least one result. */
  allTargetsRan(): boolean {
    for (const s of this.#stats.values()) if (s.completedRuns === 0) return false;
    return true;
  }

  async #loop(target: ProbeTarget, startedAt: number): Promise<void> {
    const signal = this.#stop.signal;
    const key = targetKey(targetRefOf(target));
    const stats = this.#stats.get(key)!;
    const intervalMs = target.intervalSeconds * 1000;
    const t0 = startedAt + phaseOffsetMs(this.#opts.phaseSeed ?? "", key, intervalMs);
    let slot = 0;
    while (!signal.aborted) {
      const plannedAt = t0 + slot * intervalMs + runJitterMs(intervalMs, this.#random);
      if (!(await this.#clock.sleep(plannedAt - this.#clock.now(), signal))) break;
      try {
        await this.#runSlot(target, stats, plannedAt);
      } catch (err) {
        // #runSlot catches everything it knows of; this is the last guard that
        // keeps the loop alive whatever a future change lets through.
        this.#opts.logger.error({ err, target: target.name }, "scheduler slot failed");
      }
      // The next slot is the first one that has not started yet; any slot that
      // began while this run was going is missed, not queued.
      const now = this.#clock.now();
      let next = slot + 1;
      if (t0 + next * intervalMs < now) {
        const firstFree = Math.ceil((now - t0) / intervalMs);
        const missed = firstFree - next;
        stats.missedRuns += missed;
        this.#opts.logger.warn(
          { target: target.name, missed, intervalSeconds: target.intervalSeconds },
          "run overran its interval; skipping slots",
        );
        this.#observe((o) => o.runsMissed?.(target, missed));
        next = firstFree;
      }
      slot = next;
    }
  }

  async #runSlot(target: ProbeTarget, stats: TargetStats, plannedAt: number): Promise<void> {
    const signal = this.#stop.signal;
    const release = await this.#cap.acquire(signal);
    if (release === null) return;
    try {
      if (!(await this.#spawns.take(signal))) return;
      const lagMs = Math.max(0, this.#clock.now() - plannedAt);
      stats.lastLagMs = lagMs;
      stats.maxLagMs = Math.max(stats.maxLagMs, lagMs);
      this.#setInFlight(this.#inFlight + 1);
      try {
        this.#observe((o) => o.runStarted?.(target, lagMs));
        const result = await this.#execute(target, stats);
        if (result === null) return;
        if (signal.aborted) {
          // A run cut short by shutdown says nothing about the share; reporting
          // it would page someone for our own restart.
          this.#opts.logger.debug({ target: target.name }, "dropping result of a run aborted by shutdown");
          return;
        }
        stats.completedRuns += 1;
        this.#emit(result);
      } finally {
        this.#setInFlight(this.#inFlight - 1);
      }
    } finally {
      release();
    }
  }

  /** Runs the check under a watchdog; null when the result must not be emitted. */
  async #execute(target: ProbeTarget, stats: TargetStats): Promise<ProbeResult | null> {
    const shutdown = this.#stop.signal;
    const run = new AbortController();
    const onShutdown = (): void => run.abort(shutdown.reason);
    shutdown.addEventListener("abort", onShutdown, { once: true });
    const startedWall = this.#clock.wallNow();
    const started = this.#clock.now();
    const outcome = Promise.resolve()
      .then(() => this.#opts.check.run(target, run.signal))
      .then(
        (result) => ({ ok: true as const, result }),
        (err: unknown) => ({ ok: false as const, err }),
      );

    const watchdog = new AbortController();
    let stuck = false;
    const deadlineMs = target.timeoutSeconds * 1000 + this.#limits.watchdogGraceMs;
    const guard = (async () => {
      if (!(await this.#clock.sleep(deadlineMs, watchdog.signal))) return;
      this.#opts.logger.warn({ target: target.name, deadlineMs }, "run passed its deadline; aborting it");
      run.abort(new SmbfleetError("PROBE_TIMEOUT", `run did not finish within ${deadlineMs} ms`));
      if (!(await this.#clock.sleep(this.#limits.stuckReportMs, watchdog.signal))) return;
      stuck = true;
      const err = new SmbfleetError(
        "PROBE_TIMEOUT",
        `run did not stop ${this.#limits.stuckReportMs} ms after being aborted`,
      );
      this.#opts.logger.error({ target: target.name }, err.message);
      if (shutdown.aborted) return;
      stats.completedRuns += 1;
      this.#emit(internalResult(target, startedWall, this.#clock.now() - started, err));
    })();

    const settled = await outcome;
    watchdog.abort();
    await guard;
    shutdown.removeEventListener("abort", onShutdown);
    if (stuck) {
      this.#opts.logger.warn({ target: target.name }, "stuck run ended at last; its result is dropped");
      return null;
    }
    if (settled.ok) return settled.result;
    this.#opts.logger.error(
      { err: settled.err, target: target.name },
      "check threw; reporting an internal failure",
    );
    return internalResult(target, startedWall, this.#clock.now() - started, settled.err);
  }

  #emit(result: ProbeResult): void {
    for (const sink of this.#opts.sinks) {
      try {
        sink(result);
      } catch (err) {
        this.#opts.logger.error(
          { err, target: result.target.name, error: errorMessage(err) },
          "result sink failed",
        );
      }
    }
  }

  #setInFlight(n: number): void {
    this.#inFlight = n;
    this.#observe((o) => o.inFlightChanged?.(n));
  }

  /** Metrics hooks must never cost a run. */
  #observe(call: (o: SchedulerObserver) => void): void {
    if (this.#opts.observer === undefined) return;
    try {
      call(this.#opts.observer);
    } catch (err) {
      this.#opts.logger.error({ err }, "scheduler observer failed");
    }
  }
}
