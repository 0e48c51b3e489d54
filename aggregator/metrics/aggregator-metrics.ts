// The aggregator's /metrics: smbprobe's four metrics re-exported with `site`
// and `agent` labels (so dashboards built on smbprobe keep working and
// Prometheus federation can select by site), plus fleet and ingest metrics.
// Names and labels are pinned by aggregator/metrics/aggregator-metrics.test.ts.
//
// One agent must not be able to break /metrics for every site: a target's
// series are removed once it has not reported for staleAfterMs, and a render
// carries at most a byte budget of target series, in all and per agent
// (render-budget.ts); what is left out is counted, never a 500.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
// The agent's own buckets, so a site-local Prometheus scraping an agent and
// HQ's scraping the aggregator see the same histogram shape.
import { LATENCY_BUCKETS_SECONDS } from "../../shared/metrics/latency-buckets.ts";
import { LIMITS_DEFAULTS } from "../../shared/config/defaults.ts";
import { REFUSALS, REFUSAL_REASONS } from "../ingest/refusals.ts";
import { statusName } from "../ingest/stream/replies.ts";
import { RenderBudget } from "./render-budget.ts";
import {
  CounterFamily,
  GaugeFamily,
  HistogramFamily,
  type CounterSeries,
  type GaugeSeries,
  type HistogramSeries,
} from "./series.ts";

/** Receive → commit → ack: milliseconds on a healthy database, seconds when it struggles. */
const BATCH_LATENCY_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];
/** Results per batch: one live result up to a full backlog batch. */
const BATCH_SIZE_BUCKETS = [1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

const TARGET_LABELS = ["address", "share", "domain", "site", "agent"] as const;
const OPERATION_LABELS = ["address", "share", "domain", "operation", "site", "agent"] as const;

/** What the metrics need of one stored result. */
export interface ResultForMetrics {
  targetId: bigint;
  target: { address: string; share: string; domain: string };
  startedAtMs: number;
  healthy: boolean;
  operations: readonly { operation: string; samplesMs: readonly number[]; failures: number }[];
  aboveThreshold: readonly string[];
}

interface TargetSeries {
  /** Its target labels with site and agent: what its series are removed by. */
  labels: Record<(typeof TARGET_LABELS)[number], string>;
  /** When a result of it was last recorded (options.now), for staleness. */
  lastSeenMs: number;
  state: GaugeSeries;
  /** startedAt of the result the state gauge shows, so an older (replayed) result does not overwrite it. */
  stateAtMs: number;
  ops: Map<string, { latency: HistogramSeries; failed: CounterSeries; above: CounterSeries }>;
}

export interface MetricsOptions {
  /** Node's process metrics (off in tests). */
  processMetrics?: boolean;
  /** A target's series are removed after this long without a result ([limits] metrics_stale_after). */
  staleAfterMs?: number;
  /** Bytes of target series one render carries, in all and per agent ([limits] max_metrics_bytes*). */
  maxRenderBytes?: number;
  maxRenderBytesPerAgent?: number;
  now?: () => number;
}

export class AggregatorMetrics {
  readonly registry = new Registry();
  readonly #budget = new RenderBudget(
    LIMITS_DEFAULTS.maxMetricsBytes,
    LIMITS_DEFAULTS.maxMetricsBytesPerAgent,
  );

  readonly #serviceState = new GaugeFamily({
    name: "smb_service_state",
    help: "1 when the target's last run was unhealthy (smbprobe's meaning), 0 when healthy",
    labelNames: TARGET_LABELS,
    registry: this.registry,
    budget: this.#budget,
  });
  readonly #latency = new HistogramFamily({
    name: "smb_operation_latency_seconds",
    help: "Latency of each successful SMB operation attempt, seconds",
    labelNames: OPERATION_LABELS,
    buckets: LATENCY_BUCKETS_SECONDS,
    registry: this.registry,
    budget: this.#budget,
  });
  readonly #aboveThreshold = new CounterFamily({
    name: "smb_latency_above_threshold_total",
    help: "Runs in which the operation's median latency was above its threshold",
    labelNames: OPERATION_LABELS,
    registry: this.registry,
    budget: this.#budget,
  });
  readonly #failed = new CounterFamily({
    name: "smb_operation_failed_total",
    help: "Failed SMB operation attempts",
    labelNames: OPERATION_LABELS,
    registry: this.registry,
    budget: this.#budget,
  });

  readonly agentsConnected = new Gauge({
    name: "smbfleet_agents_connected",
    help: "Agent streams open on this aggregator",
    labelNames: ["site"],
    registers: [this.registry],
  });
  readonly agentLastSeen = new Gauge({
    name: "smbfleet_agent_last_seen_timestamp_seconds",
    help: "When the agent last sent anything to this aggregator, Unix seconds",
    labelNames: ["site", "agent"],
    registers: [this.registry],
  });
  readonly agentBacklog = new Gauge({
    name: "smbfleet_agent_backlog_results",
    help: "Results buffered at the agent and not yet acknowledged, as it last reported",
    labelNames: ["site", "agent"],
    registers: [this.registry],
  });
  readonly agentDropped = new Gauge({
    name: "smbfleet_agent_dropped_results",
    help: "Results the agent dropped because its buffer was over its limits, ever, as it last reported",
    labelNames: ["site", "agent"],
    registers: [this.registry],
  });
  readonly agentClockSkew = new Gauge({
    name: "smbfleet_agent_clock_skew_seconds",
    help: "Aggregator clock minus agent clock at the last Hello or Heartbeat, seconds",
    labelNames: ["site", "agent"],
    registers: [this.registry],
  });
  readonly ingestResults = new Counter({
    name: "smbfleet_ingest_results_total",
    help: "Results received, by outcome: stored, duplicate (at or below the high-water mark), quarantined",
    labelNames: ["site", "outcome"],
    registers: [this.registry],
  });
  readonly batchLatency = new Histogram({
    name: "smbfleet_ingest_batch_duration_seconds",
    help: "From receiving a batch to sending its Ack (includes the commit), seconds",
    buckets: BATCH_LATENCY_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: "smbfleet_ingest_batch_results",
    help: "Results per received batch",
    buckets: BATCH_SIZE_BUCKETS,
    registers: [this.registry],
  });
  readonly rejects = new Counter({
    name: "smbfleet_ingest_rejects_total",
    help: "In-band Rejects sent to agents, by gRPC status code name",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly streamsRefused = new Counter({
    name: "smbfleet_ingest_streams_refused_total",
    help:
      "Streams ended by the aggregator with an error status, and TLS connections refused before any stream, " +
      "by gRPC status code name (UNAVAILABLE for a refused connection) and reason",
    labelNames: ["code", "reason"],
    registers: [this.registry],
  });

  readonly limited = new Counter({
    name: "smbfleet_ingest_limited_total",
    help: "Refusals by an agent limit, by its [limits] key: streams, Hello deadline, message rates, targets",
    labelNames: ["limit"],
    registers: [this.registry],
  });
  readonly helloTargetsIgnored = new Counter({
    name: "smbfleet_ingest_hello_targets_ignored_total",
    help: "Targets listed in Hello and ignored: invalid, or over the agent's max_targets_per_agent or new_targets_per_minute",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly logLinesSuppressed = new Counter({
    name: "smbfleet_log_lines_suppressed_total",
    help: "Warnings about an agent's bad input left out of the log by its per-agent budget",
    registers: [this.registry],
  });

  /** Registered after the target families, so that its collect() sees this render's budget. */
  readonly omittedSeries = new Gauge({
    name: "smbfleet_metrics_omitted_series",
    help: "Target series left out of this /metrics render by its byte budget, by the agent they belong to",
    labelNames: ["site", "agent"],
    registers: [this.registry],
    collect: () => this.#reportOmitted(),
  });
  readonly staleTargetsRemoved = new Counter({
    name: "smbfleet_metrics_stale_targets_removed_total",
    help: "Targets whose series were removed after metrics_stale_after without a result",
    registers: [this.registry],
  });

  readonly #targets = new Map<string, TargetSeries>();
  readonly #staleAfterMs: number;
  readonly #now: () => number;

  constructor(opts: MetricsOptions = {}) {
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.#staleAfterMs = opts.staleAfterMs ?? LIMITS_DEFAULTS.metricsStaleAfterSeconds * 1000;
    this.#now = opts.now ?? Date.now;
    this.#budget.setLimits(
      opts.maxRenderBytes ?? LIMITS_DEFAULTS.maxMetricsBytes,
      opts.maxRenderBytesPerAgent ?? LIMITS_DEFAULTS.maxMetricsBytesPerAgent,
    );
    // Every reason from the start, at 0: an alert on rate(...{reason="revoked"}) needs the series before the first one.
    for (const reason of REFUSAL_REASONS)
      this.streamsRefused.inc({ code: statusName(REFUSALS[reason]), reason }, 0);
  }

  /**
   * /metrics: stale targets removed, then one render within the byte budget.
   * (registry.metrics() alone renders everything: tests and the golden file.)
   */
  render(): Promise<string> {
    this.sweep();
    this.#budget.begin();
    try {
      return this.registry.metrics();
    } finally {
      // The render's get() calls all ran inside registry.metrics() before it returned (render-budget.ts).
      this.#budget.end();
    }
  }

  /** Removes the series of targets without a result for staleAfterMs. */
  sweep(nowMs = this.#now()): void {
    for (const [key, t] of this.#targets) {
      if (nowMs - t.lastSeenMs <= this.#staleAfterMs) continue;
      this.#serviceState.remove(t.labels);
      for (const operation of t.ops.keys()) {
        const labels = { ...t.labels, operation };
        this.#latency.remove(labels);
        this.#failed.remove(labels);
        this.#aboveThreshold.remove(labels);
      }
      this.#targets.delete(key);
      this.staleTargetsRemoved.inc();
    }
  }

  #reportOmitted(): void {
    this.omittedSeries.reset();
    for (const [owner, n] of this.#budget.omitted) {
      const [site = "", agent = ""] = owner.split("/");
      this.omittedSeries.set({ site, agent }, n);
    }
  }

  /** Folds newly stored results (never duplicates) into smbprobe's four metrics. */
  recordResults(site: string, agent: string, results: readonly ResultForMetrics[]): void {
    const nowMs = this.#now();
    for (const r of results) {
      const t = this.#target(site, agent, r);
      t.lastSeenMs = nowMs;
      if (r.startedAtMs >= t.stateAtMs) {
        t.state.value = r.healthy ? 0 : 1;
        t.stateAtMs = r.startedAtMs;
      }
      for (const op of r.operations) {
        const s = this.#operation(site, agent, r, t, op.operation);
        for (const ms of op.samplesMs) s.latency.observe(ms / 1000);
        // As the agent counts it (agent/metrics/record-result.ts): a failed login once per run.
        s.failed.value += op.operation === "login" ? Math.min(op.failures, 1) : op.failures;
      }
      for (const op of r.aboveThreshold) this.#operation(site, agent, r, t, op).above.value += 1;
    }
  }

  #target(site: string, agent: string, r: ResultForMetrics): TargetSeries {
    const key = `${agent}\u0000${r.targetId}`;
    let t = this.#targets.get(key);
    if (t === undefined) {
      const labels = { ...this.#targetLabels(r), site, agent };
      t = {
        labels,
        lastSeenMs: 0,
        state: this.#serviceState.with(labels),
        stateAtMs: -Infinity,
        ops: new Map(),
      };
      this.#targets.set(key, t);
    }
    return t;
  }

  #targetLabels(r: ResultForMetrics): { address: string; share: string; domain: string } {
    return { address: r.target.address, share: r.target.share, domain: r.target.domain };
  }

  #operation(site: string, agent: string, r: ResultForMetrics, t: TargetSeries, operation: string) {
    let s = t.ops.get(operation);
    if (s === undefined) {
      const labels = { ...this.#targetLabels(r), operation, site, agent };
      s = {
        latency: this.#latency.with(labels),
        failed: this.#failed.with(labels),
        above: this.#aboveThreshold.with(labels),
      };
      t.ops.set(operation, s);
    }
    return s;
  }
}
