// What one agent may cost the aggregator, so that a compromised site cannot
// disturb HQ: its streams, the rate of each message kind, its targets, its
// log lines. One options object (config [limits]; shared/config/defaults.ts
// LIMITS_DEFAULTS gives each default its reason) and the per-agent state
// every stream of this process shares. Nothing here does I/O: a stream asks
// before it does the work, and a refusal costs no database statement.
import { LIMITS_DEFAULTS } from "../../../shared/config/defaults.ts";
import { LogGate } from "./log-gate.ts";
import { TokenBucket, type Take } from "./rate-limit.ts";
import { TargetQuota } from "./target-quota.ts";

export interface IngestLimits {
  /** Streams one agent may hold at once; more are refused (RESOURCE_EXHAUSTED). */
  maxStreamsPerAgent: number;
  /** A stream without Hello is closed after this (DEADLINE_EXCEEDED). */
  helloTimeoutMs: number;
  hellosPerMinute: number;
  heartbeatsPerMinute: number;
  batchesPerSecond: number;
  maxTargetsPerAgent: number;
  newTargetsPerMinute: number;
  /** Warnings about one agent's bad input per minute. */
  logLinesPerMinute: number;
}

export const DEFAULT_INGEST_LIMITS: IngestLimits = {
  maxStreamsPerAgent: LIMITS_DEFAULTS.maxStreamsPerAgent,
  helloTimeoutMs: LIMITS_DEFAULTS.helloTimeoutSeconds * 1000,
  hellosPerMinute: LIMITS_DEFAULTS.hellosPerMinute,
  heartbeatsPerMinute: LIMITS_DEFAULTS.heartbeatsPerMinute,
  batchesPerSecond: LIMITS_DEFAULTS.batchesPerSecond,
  maxTargetsPerAgent: LIMITS_DEFAULTS.maxTargetsPerAgent,
  newTargetsPerMinute: LIMITS_DEFAULTS.newTargetsPerMinute,
  logLinesPerMinute: LIMITS_DEFAULTS.logLinesPerMinute,
};

/** The [limits] key each refusal is counted under (smbfleet_ingest_limited_total{limit}). */
export type LimitName =
  | "max_streams_per_agent"
  | "hello_timeout"
  | "hellos_per_minute"
  | "heartbeats_per_minute"
  | "batches_per_second"
  | "max_targets_per_agent"
  | "new_targets_per_minute";

export type MessageKind = "hello" | "heartbeat" | "batch";

const KIND_LIMIT: Record<MessageKind, LimitName> = {
  hello: "hellos_per_minute",
  heartbeat: "heartbeats_per_minute",
  batch: "batches_per_second",
};

/**
 * Batches may come two seconds' worth at once (a reconnect's first window);
 * Hello and Heartbeat a minute's worth, as their limits are per minute.
 */
const BATCH_BURST_SECONDS = 2;

export class AgentQuotas {
  readonly limits: IngestLimits;
  readonly targets: TargetQuota;
  readonly logs: LogGate;
  readonly #now: () => number;
  readonly #streams = new Map<string, number>();
  readonly #messages = new Map<string, Record<MessageKind, TokenBucket>>();

  constructor(
    limits: IngestLimits = DEFAULT_INGEST_LIMITS,
    hooks: { onLogSuppressed?: () => void } = {},
    now: () => number = Date.now,
  ) {
    this.limits = limits;
    this.#now = now;
    this.targets = new TargetQuota(limits.maxTargetsPerAgent, limits.newTargetsPerMinute, now);
    this.logs = new LogGate(limits.logLinesPerMinute, hooks.onLogSuppressed, now);
  }

  /** Counts a stream of `agent` open; false (nothing counted) when it has its maximum. */
  openStream(agent: string): boolean {
    const n = this.#streams.get(agent) ?? 0;
    if (n >= this.limits.maxStreamsPerAgent) return false;
    this.#streams.set(agent, n + 1);
    return true;
  }

  /** Streams of `agent` open now. */
  streamsOf(agent: string): number {
    return this.#streams.get(agent) ?? 0;
  }

  /** A stream openStream counted has ended. */
  closeStream(agent: string): void {
    const n = (this.#streams.get(agent) ?? 0) - 1;
    if (n <= 0) this.#streams.delete(agent);
    else this.#streams.set(agent, n);
  }

  /** What a refusal for `limit` says, e.g. "heartbeats over 12 a minute ([limits] heartbeats_per_minute)". */
  describe(limit: LimitName): string {
    const l = this.limits;
    switch (limit) {
      case "hellos_per_minute":
        return `Hellos over ${l.hellosPerMinute} a minute ([limits] ${limit})`;
      case "heartbeats_per_minute":
        return `heartbeats over ${l.heartbeatsPerMinute} a minute ([limits] ${limit})`;
      case "batches_per_second":
        return `batches over ${l.batchesPerSecond} a second ([limits] ${limit})`;
      case "new_targets_per_minute":
        return `new targets over ${l.newTargetsPerMinute} a minute ([limits] ${limit})`;
      case "max_targets_per_agent":
        return `more than ${l.maxTargetsPerAgent} distinct targets ([limits] ${limit})`;
      case "max_streams_per_agent":
        return `more than ${l.maxStreamsPerAgent} streams ([limits] ${limit})`;
      case "hello_timeout":
        return `no Hello within ${l.helloTimeoutMs / 1000} s ([limits] ${limit})`;
    }
  }

  /** May `agent` send one more message of `kind` now? Asked before the message is decoded. */
  message(agent: string, kind: MessageKind): Take & { limit: LimitName } {
    let b = this.#messages.get(agent);
    if (b === undefined) {
      const l = this.limits;
      b = {
        hello: new TokenBucket(l.hellosPerMinute / 60, 60, this.#now),
        heartbeat: new TokenBucket(l.heartbeatsPerMinute / 60, 60, this.#now),
        batch: new TokenBucket(l.batchesPerSecond, BATCH_BURST_SECONDS, this.#now),
      };
      this.#messages.set(agent, b);
    }
    return { ...b[kind].takeWhole(), limit: KIND_LIMIT[kind] };
  }
}
