// The agent's local /metrics: smbprobe's four metrics with its names and
// label names unchanged (plus `site`), so existing dashboards and alerts keep
// working, and smbfleet's own agent metrics beside them. One Registry per
// agent, never prom-client's global one, so tests and several roles in one
// process do not share state.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { LATENCY_BUCKETS_SECONDS } from "../../shared/metrics/latency-buckets.ts";

const TARGET_LABELS = ["address", "share", "domain", "site"] as const;
const OPERATION_LABELS = ["address", "share", "domain", "operation", "site"] as const;
type TargetLabel = (typeof TARGET_LABELS)[number];
type OperationLabel = (typeof OPERATION_LABELS)[number];

/** A whole run: ~25 ms of smbclient start-up plus the operations, up to a timeout of minutes. */
export const RUN_DURATION_BUCKETS_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** How late a run starts against its slot: ms when idle, seconds when the caps are saturated. */
export const SCHEDULE_LAG_BUCKETS_SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60];

export interface AgentMetricsOptions {
  /** The agent's site; "" when standalone without one (Prometheus treats an empty label as absent). */
  site: string;
  agentId: string;
  version: string;
  /** process_* and nodejs_* metrics; off in the golden test because they vary by platform. */
  processMetrics?: boolean;
}

export interface AgentMetrics {
  readonly registry: Registry;
  readonly site: string;
  readonly smb: {
    readonly serviceState: Gauge<TargetLabel>;
    readonly operationLatency: Histogram<OperationLabel>;
    readonly latencyAboveThreshold: Counter<OperationLabel>;
    readonly operationFailed: Counter<OperationLabel>;
  };
  readonly runs: Counter<TargetLabel | "result" | "failure_class">;
  readonly runDuration: Histogram<TargetLabel>;
  readonly scheduleLag: Histogram<"site">;
  readonly missedRuns: Counter<TargetLabel>;
  readonly runsInFlight: Gauge<"site">;
  /** For the durable buffer (agent/buffer): set after each write, drop and ack. */
  readonly buffer: {
    setBacklog(results: number, bytes: number, oldestAgeSeconds: number): void;
    dropped(reason: "max_bytes" | "max_age" | "disk_full", count: number): void;
  };
  /** For the sender (agent/pusher). */
  readonly aggregator: {
    setConnected(connected: boolean): void;
    acked(results: number): void;
  };
}

export function createAgentMetrics(opts: AgentMetricsOptions): AgentMetrics {
  const registry = new Registry();
  const registers = [registry];
  const site = opts.site;

  new Gauge({
    name: "smbfleet_agent_info",
    help: "Always 1; labels name this agent, its site and its version",
    labelNames: ["site", "agent_id", "version"],
    registers,
  }).set({ site, agent_id: opts.agentId, version: opts.version }, 1);

  const bufferResults = new Gauge({
    name: "smbfleet_agent_buffer_results",
    help: "Results in the local buffer not yet acknowledged by the aggregator",
    labelNames: ["site"],
    registers,
  });
  const bufferBytes = new Gauge({
    name: "smbfleet_agent_buffer_bytes",
    help: "Bytes of results in the local buffer not yet acknowledged by the aggregator",
    labelNames: ["site"],
    registers,
  });
  const bufferOldest = new Gauge({
    name: "smbfleet_agent_buffer_oldest_age_seconds",
    help: "Age of the oldest unacknowledged result in the local buffer (0 when empty)",
    labelNames: ["site"],
    registers,
  });
  const bufferDropped = new Counter({
    name: "smbfleet_agent_buffer_dropped_total",
    help: "Results dropped unsent from the local buffer because it was over a limit, by limit",
    labelNames: ["site", "reason"],
    registers,
  });
  const connected = new Gauge({
    name: "smbfleet_agent_aggregator_connected",
    help: "1 while the stream to the aggregator is open, 0 otherwise (also 0 when standalone)",
    labelNames: ["site"],
    registers,
  });
  const acked = new Counter({
    name: "smbfleet_agent_results_acked_total",
    help: "Results the aggregator acknowledged as committed",
    labelNames: ["site"],
    registers,
  });
  bufferResults.set({ site }, 0);
  bufferBytes.set({ site }, 0);
  bufferOldest.set({ site }, 0);
  connected.set({ site }, 0);
  acked.inc({ site }, 0);

  const runsInFlight = new Gauge({
    name: "smbfleet_agent_runs_in_flight",
    help: "Probe runs in progress now",
    labelNames: ["site"],
    registers,
  });
  runsInFlight.set({ site }, 0);

  if (opts.processMetrics === true) collectDefaultMetrics({ register: registry });

  return {
    registry,
    site,
    smb: {
      serviceState: new Gauge({
        name: "smb_service_state",
        help: "Current state of SMB service based on results of the probe: 1 = UNHEALTHY (an operation failed or a median latency was above its threshold), 0 = healthy (smbprobe's meaning)",
        labelNames: TARGET_LABELS,
        registers,
      }),
      operationLatency: new Histogram({
        name: "smb_operation_latency_seconds",
        help: "Time it takes to complete a given SMB operation, such as read, write, lsdir, unlink; one observation per sample, seconds",
        labelNames: OPERATION_LABELS,
        buckets: LATENCY_BUCKETS_SECONDS,
        registers,
      }),
      latencyAboveThreshold: new Counter({
        name: "smb_latency_above_threshold_total",
        help: "Count of times the probe detected high operation latency (a run's median above its threshold) during a read, write, lsdir, unlink",
        labelNames: OPERATION_LABELS,
        registers,
      }),
      operationFailed: new Counter({
        name: "smb_operation_failed_total",
        help: "Number of times a particular probe operation did not succeed",
        labelNames: OPERATION_LABELS,
        registers,
      }),
    },
    runs: new Counter({
      name: "smbfleet_agent_runs_total",
      help: "Probe runs finished, by result (healthy|unhealthy) and failure class (none when the run had no failure)",
      labelNames: [...TARGET_LABELS, "result", "failure_class"],
      registers,
    }),
    runDuration: new Histogram({
      name: "smbfleet_agent_run_duration_seconds",
      help: "Wall time of one probe run, smbclient start to exit",
      labelNames: TARGET_LABELS,
      buckets: RUN_DURATION_BUCKETS_SECONDS,
      registers,
    }),
    scheduleLag: new Histogram({
      name: "smbfleet_agent_schedule_lag_seconds",
      help: "How late probe runs start against their fixed-rate slot (waiting for the concurrency cap or spawn limit)",
      labelNames: ["site"],
      buckets: SCHEDULE_LAG_BUCKETS_SECONDS,
      registers,
    }),
    missedRuns: new Counter({
      name: "smbfleet_agent_missed_runs_total",
      help: "Scheduled runs skipped because the previous run of the same target was still going",
      labelNames: TARGET_LABELS,
      registers,
    }),
    runsInFlight,
    buffer: {
      setBacklog(results, bytes, oldestAgeSeconds) {
        bufferResults.set({ site }, results);
        bufferBytes.set({ site }, bytes);
        bufferOldest.set({ site }, oldestAgeSeconds);
      },
      dropped(reason, count) {
        bufferDropped.inc({ site, reason }, count);
      },
    },
    aggregator: {
      setConnected(isConnected) {
        connected.set({ site }, isConnected ? 1 : 0);
      },
      acked(results) {
        acked.inc({ site }, results);
      },
    },
  };
}
