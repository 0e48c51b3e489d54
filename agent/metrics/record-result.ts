// Feeds probe results and scheduler events into the agent's metrics. The
// result sink is one of the scheduler's sinks; the observer its hooks.
import type { ProbeTarget } from "../../shared/config/types.ts";
import type { ProbeResult, TargetRef } from "../../shared/result.ts";
import type { ResultSink, SchedulerObserver } from "../scheduler/scheduler.ts";
import type { AgentMetrics } from "./agent-metrics.ts";

function targetLabels(t: Pick<TargetRef, "address" | "share" | "domain">, site: string) {
  return { address: t.address, share: t.share, domain: t.domain, site };
}

/** In smbprobe's label order (the exposition follows insertion order). */
function operationLabels(
  t: Pick<TargetRef, "address" | "share" | "domain">,
  operation: string,
  site: string,
) {
  return { address: t.address, share: t.share, domain: t.domain, operation, site };
}

export function recordResult(metrics: AgentMetrics, result: ProbeResult): void {
  const labels = targetLabels(result.target, metrics.site);
  // smbprobe's meaning, kept on purpose: 1 is UNHEALTHY, 0 is healthy.
  metrics.smb.serviceState.set(labels, result.healthy ? 0 : 1);
  for (const op of result.operations) {
    const opLabels = operationLabels(result.target, op.operation, metrics.site);
    for (const ms of op.samplesMs) metrics.smb.operationLatency.observe(opLabels, ms / 1000);
    // smbprobe counts a failed login once per run, however the check reports it.
    const failures = op.operation === "login" ? Math.min(op.failures, 1) : op.failures;
    // inc(0) still creates the series, so a dashboard sees 0 rather than nothing.
    metrics.smb.operationFailed.inc(opLabels, failures);
  }
  for (const op of result.aboveThreshold) {
    metrics.smb.latencyAboveThreshold.inc(operationLabels(result.target, op, metrics.site), 1);
  }
  metrics.runs.inc({
    ...labels,
    result: result.healthy ? "healthy" : "unhealthy",
    failure_class: result.failureClass ?? "none",
  });
  metrics.runDuration.observe(labels, result.durationMs / 1000);
}

export function metricsSink(metrics: AgentMetrics): ResultSink {
  return (result) => recordResult(metrics, result);
}

export function schedulerObserver(metrics: AgentMetrics): SchedulerObserver {
  const site = metrics.site;
  return {
    runStarted: (_target: ProbeTarget, lagMs: number) => metrics.scheduleLag.observe({ site }, lagMs / 1000),
    runsMissed: (target: ProbeTarget, count: number) =>
      metrics.missedRuns.inc(targetLabels(target, site), count),
    inFlightChanged: (n: number) => metrics.runsInFlight.set({ site }, n),
  };
}
