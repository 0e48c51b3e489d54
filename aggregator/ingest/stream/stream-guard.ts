// One stream's side of its agent's quotas (quotas.ts): the stream count it
// holds, the Hello deadline, the message rates it asks for, the targets let
// in, the refusals it counts (smbfleet_ingest_limited_total) and the
// warnings it writes through the agent's LogGate. AgentStream asks; this
// answers with what to refuse, and never does I/O.
import type { Logger } from "../../../shared/logger.ts";
import type { AggregatorMetrics } from "../../metrics/aggregator-metrics.ts";
import type { ReadBatch } from "../decode/batch-reader.ts";
import type { ValidTarget } from "../decode/validate.ts";
import type { Identity } from "../store/agents.ts";
import type { AgentQuotas, LimitName, MessageKind } from "./quotas.ts";
import type { Take } from "./rate-limit.ts";
import type { Hello } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import { batchTargets, helloTargets } from "./target-check.ts";

export class StreamGuard {
  readonly quotas: AgentQuotas;
  readonly #metrics: AggregatorMetrics;
  /** The peer's address without its port: who warnings are about before the agent is known. */
  readonly #peerKey: string;
  #agent: string | null = null;
  /** The agent whose stream count this stream holds, once counted. */
  #counted: string | null = null;
  #helloTimer: NodeJS.Timeout | undefined;
  /** Target objects of this stream's reader the quota has let in: a steady stream asks nothing. */
  readonly #admitted = new WeakSet<ValidTarget>();

  constructor(quotas: AgentQuotas, metrics: AggregatorMetrics, peer: string) {
    this.quotas = quotas;
    this.#metrics = metrics;
    this.#peerKey = `peer ${peer.slice(0, peer.lastIndexOf(":"))}`;
  }

  /** Counts this stream for `agent`; the refusal (RESOURCE_EXHAUSTED) when it already has its maximum. */
  count(agent: string): string | null {
    this.#agent = agent;
    if (this.quotas.openStream(agent)) {
      this.#counted = agent;
      return null;
    }
    this.limited("max_streams_per_agent");
    return `agent ${agent} already has ${this.quotas.streamsOf(agent)} streams open ([limits] max_streams_per_agent)`;
  }

  /** Calls onTimeout with the refusal (DEADLINE_EXCEEDED) unless helloCame() is called first. */
  startHelloDeadline(onTimeout: (details: string) => void): void {
    const ms = this.quotas.limits.helloTimeoutMs;
    this.#helloTimer = setTimeout(() => {
      this.limited("hello_timeout");
      onTimeout(`no Hello within ${ms / 1000} s of the stream's start ([limits] hello_timeout)`);
    }, ms);
  }

  /** The stream's first message arrived (Hello or not: what it is, the stream judges). */
  helloCame(): void {
    clearTimeout(this.#helloTimer);
  }

  /** One more message of `kind`: null when within the agent's rate, else what to refuse it with. */
  take(kind: MessageKind): (Take & { ok: false; what: string }) | null {
    const taken = this.quotas.message(this.#agent!, kind);
    if (taken.ok) return null;
    this.limited(taken.limit);
    return { ...taken, what: this.quotas.describe(taken.limit) };
  }

  /**
   * The targets Hello lists that are usable and within the quota; the rest
   * are ignored, counted and (within the agent's log budget) named.
   */
  helloTargets(hello: Hello, id: Identity, log: Logger): ValidTarget[] {
    let invalid = 0;
    const { announced, overCap, overRate } = helloTargets(hello, id, this.quotas.targets, (reason) => {
      invalid++;
      this.warn(log, { reason }, "Hello lists an unusable target; ignored");
    });
    const ignored = this.#metrics.helloTargetsIgnored;
    if (invalid > 0) ignored.inc({ reason: "invalid" }, invalid);
    if (overCap > 0) ignored.inc({ reason: "max_targets_per_agent" }, overCap);
    if (overRate > 0) ignored.inc({ reason: "new_targets_per_minute" }, overRate);
    if (overCap + overRate > 0) {
      this.limited("max_targets_per_agent", overCap);
      this.limited("new_targets_per_minute", overRate);
      this.warn(
        log,
        { max_targets_per_agent: overCap, new_targets_per_minute: overRate },
        `Hello lists ${overCap + overRate} targets over the agent's limits; ignored until their results come`,
      );
    }
    return announced;
  }

  /**
   * The target quota over a read batch (target-check.ts): over-cap rows are
   * quarantined in `read`; the Take refuses the batch for now when new
   * targets come too fast.
   */
  checkTargets(read: ReadBatch & { ok: true }, firstSeq: bigint, id: Identity): Take | null {
    const q = batchTargets(read, firstSeq, id, this.quotas.targets, this.#admitted);
    if (q.refused !== null) this.limited("new_targets_per_minute");
    this.limited("max_targets_per_agent", q.overCap);
    return q.refused;
  }

  limited(limit: LimitName, n = 1): void {
    if (n > 0) this.#metrics.limited.inc({ limit }, n);
  }

  /** A warning about this agent's input, within its log budget (log-gate.ts). */
  warn(log: Logger, fields: Record<string, unknown>, msg: string): void {
    this.quotas.logs.warn(this.#agent ?? this.#peerKey, log, fields, msg);
  }

  /** The stream ended: its count is released and what the agent's LogGate held back is told, if it may. */
  release(log: Logger): void {
    clearTimeout(this.#helloTimer);
    if (this.#counted === null) return;
    this.quotas.closeStream(this.#counted);
    this.#counted = null;
    this.quotas.logs.flush(this.#agent ?? this.#peerKey, log);
  }
}
