// The aggregator's /metrics: smbprobe's four metrics re-exported with `site`
// and `agent` labels (so dashboards built on smbprobe keep working and
// Prometheus federation can select by site), plus fleet and ingest metrics.
// Names and labels are pinned by aggregator/metrics/aggregator-metrics.test.ts.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
// The agent's own buckets, so a site-local Prometheus scraping an agent and
// HQ's scraping the aggregator see the same histogram shape.
import { LATENCY_BUCKETS_SECONDS } from "../../shared/metrics/latency-buckets.ts";
import { REFUSALS, REFUSAL_REASONS } from "../ingest/refusals.ts";
import { statusName } from "../ingest/stream/replies.ts";
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
  state: GaugeSeries;
  /** startedAt of the result the state gauge shows, so an older (replayed) result does not overwrite it. */
  stateAtMs: number;
  ops: Map<string, { latency: HistogramSeries; failed: CounterSeries; above: CounterSeries }>;
}

export class AggregatorMetrics {
  readonly registry = new Registry();

  readonly #serviceState = new GaugeFamily({
    name: "smb_service_state",
    help: "1 when the target's last run was unhealthy (smbprobe's meaning), 0 when healthy",
    labelNames: TARGET_LABELS,
    registry: this.registry,
  });
  readonly #latency = new HistogramFamily({
    name: "smb_operation_latency_seconds",
    help: "Latency of each successful SMB operation attempt, seconds",
    labelNames: OPERATION_LABELS,
    buckets: LATENCY_BUCKETS_SECONDS,
    registry: this.registry,
  });
  readonly #aboveThreshold = new CounterFamily({
    name: "smb_latency_above_threshold_total",
    help: "Runs in which the operation's median latency was above its threshold",
    labelNames: OPERATION_LABELS,
    registry: this.registry,
  });
  readonly #failed = new CounterFamily({
    name: "smb_operation_failed_total",
    help: "Failed SMB operation attempts",
    labelNames: OPERATION_LABELS,
    registry: this.registry,
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

  readonly #targets = new Map<string, TargetSeries>();

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    // Every reason from the start, at 0: an alert on rate(...{reason="revoked"}) needs the series before the first one.
    for (const reason of REFUSAL_REASONS)
      this.streamsRefused.inc({ code: statusName(REFUSALS[reason]), reason }, 0);
  }

  /** Folds newly stored results (never duplicates) into smbprobe's four metrics. */
  recordResults(site: string, agent: string, results: readonly ResultForMetrics[]): void {
    for (const r of results) {
      const t = this.#target(site, agent, r);
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
      t = {
        state: this.#serviceState.with({ ...this.#targetLabels(r), site, agent }),
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
