// What both demo modes print: one block per target, healthy or UNHEALTHY,
// with per-operation samples, medians and failures read from a /metrics page
// (the agent's in standalone mode, the aggregator's in fleet mode). Series
// are picked by labels, so the same code reads `share` alone at an agent and
// `site`/`agent`/`share` at the aggregator.
import { histogramMedian, select, type Sample } from "./prom-text.ts";

/** smbprobe's operations and the integrity check, in the order a run performs them. */
const OPERATIONS = ["login", "write", "ls_dir", "read", "integrity", "unlink"];

export interface OperationSummary {
  op: string;
  count: number;
  medianMs: number | null;
  meanMs: number | null;
  failed: number;
}

export interface TargetSummary {
  share: string;
  healthy: boolean;
  /** Why the last unhealthy runs failed (e.g. access_denied); empty when only latency was over. */
  failureClasses: string[];
  ops: OperationSummary[];
}

/**
 * The target whose series carry every given label, or null until its first
 * result is in (no smb_service_state yet). failureClasses is left empty: each
 * mode knows where to find them.
 */
export function summariseTarget(
  samples: readonly Sample[],
  labels: Record<string, string>,
): TargetSummary | null {
  const state = select(samples, "smb_service_state", labels)[0];
  if (state === undefined) return null;
  const ops = OPERATIONS.map((op) => {
    const opLabels = { ...labels, operation: op };
    const count = select(samples, "smb_operation_latency_seconds_count", opLabels)[0]?.value ?? 0;
    const sum = select(samples, "smb_operation_latency_seconds_sum", opLabels)[0]?.value ?? 0;
    const median = histogramMedian(samples, "smb_operation_latency_seconds", opLabels);
    return {
      op,
      count,
      medianMs: median === null ? null : median * 1000,
      meanMs: count === 0 ? null : (sum / count) * 1000,
      failed: select(samples, "smb_operation_failed_total", opLabels)[0]?.value ?? 0,
    };
  }).filter((o) => o.count > 0 || o.failed > 0);
  return {
    share: labels["share"] ?? state.labels["share"] ?? "?",
    healthy: state.value === 0,
    failureClasses: [],
    ops,
  };
}

/** One target's block, indented by `indent` spaces: status line, then the op table. */
export function formatTarget(s: TargetSummary, indent: number): string[] {
  const pad = " ".repeat(indent);
  const ms = (v: number | null): string => (v === null ? "-" : v.toFixed(2));
  const status = s.healthy ? "healthy" : `UNHEALTHY (${s.failureClasses.join(", ") || "latency"})`;
  const lines = [`${pad}//${s.share}: ${status}`];
  lines.push(
    `${pad}  ${"op".padEnd(10)}${"samples".padStart(8)}${"~median ms".padStart(12)}${"mean ms".padStart(10)}${"failed".padStart(8)}`,
  );
  for (const o of s.ops) {
    lines.push(
      `${pad}  ${o.op.padEnd(10)}${String(o.count).padStart(8)}${ms(o.medianMs).padStart(12)}${ms(o.meanMs).padStart(10)}${String(o.failed).padStart(8)}`,
    );
  }
  return lines;
}

export const MEDIAN_NOTE =
  "(~median is estimated from the histogram buckets, as Prometheus's histogram_quantile does)";

export function log(message: string): void {
  process.stderr.write(`demo: ${message}\n`);
}

/** Resolves after ms, or at once when signal aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
