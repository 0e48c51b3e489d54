// One log line per result would be 3 lines a second for 200 targets: noise.
// Instead a target's unhealthy runs are logged at warn, its return to health
// at info, and every other healthy run only at debug.
import type { Logger } from "../shared/logger.ts";
import { median, targetKey, type ProbeResult } from "../shared/result.ts";
import type { ResultSink } from "./scheduler/scheduler.ts";

function summary(r: ProbeResult) {
  const mediansMs: Record<string, number | null> = {};
  for (const op of r.operations) mediansMs[op.operation] = median(op.samplesMs);
  return {
    target: r.target.name,
    address: r.target.address,
    share: r.target.share,
    healthy: r.healthy,
    failureClass: r.failureClass,
    failureMessage: r.failureMessage,
    aboveThreshold: r.aboveThreshold,
    durationMs: Math.round(r.durationMs * 100) / 100,
    mediansMs,
  };
}

export function logSink(logger: Logger): ResultSink {
  const lastHealthy = new Map<string, boolean>();
  return (r) => {
    const key = targetKey(r.target);
    const before = lastHealthy.get(key);
    lastHealthy.set(key, r.healthy);
    if (!r.healthy) logger.warn(summary(r), "probe run unhealthy");
    else if (before === false) logger.info(summary(r), "probe target healthy again");
    else if (before === undefined) logger.info(summary(r), "probe target healthy");
    else logger.debug(summary(r), "probe run healthy");
  };
}
