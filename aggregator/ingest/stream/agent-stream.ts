// One agent's ingest stream, from Hello to the end. Messages are handled in
// arrival order; batches that queued up behind a commit are checked one by
// one and then committed together (batch-group.ts), and every reply goes out
// in the order the messages came, each Ack after its commit.
//
// What ends the stream (a gRPC status): no Hello first (FAILED_PRECONDITION),
// no Hello in time (DEADLINE_EXCEEDED), identity problems (UNAUTHENTICATED,
// PERMISSION_DENIED), more streams or Hellos than the agent's limits
// (RESOURCE_EXHAUSTED), a database error during Hello or a batch
// (UNAVAILABLE: the agent reconnects and resends; nothing is acked that is
// not committed), shutdown (UNAVAILABLE).
// What does not (an in-band Reject): undecodable or oversized messages,
// invalid results and results for targets over the agent's cap (quarantined,
// and the batch is still acked), a batch going backwards on this stream, the
// rate limits of results, batches, heartbeats and new targets.
// test/ingest/*.test.ts pin each. What one agent may cost is in quotas.ts;
// warnings about its input go through its LogGate.
import { status, type ServerDuplexStream } from "@grpc/grpc-js";
import type { AggregatorMessage, Heartbeat, Hello } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import { errorMessage } from "../../../shared/errors.ts";
import type { Decoded } from "../../../shared/grpc/service.ts";
import type { Logger } from "../../../shared/logger.ts";
import { fleetNameProblem } from "../../../shared/tls/names.ts";
import type { Db } from "../../db/connect.ts";
import type { AggregatorMetrics } from "../../metrics/aggregator-metrics.ts";
import { admitCall, type Admission } from "../admission/admit.ts";
import type { RefusalReason } from "../refusals.ts";
import { markDisconnected, openAgent, recordHeartbeat, type Identity } from "../store/agents.ts";
import { notifyObservers, type PostCommitObserver } from "../observers.ts";
import { BatchOrder } from "./batch-order.ts";
import type { BatchPool } from "../store/batch-pool.ts";
import { MAX_MERGED_RESULTS, storeGroup, type Admitted, type HeldReply } from "./batch-group.ts";
import { BatchReader } from "../decode/batch-reader.ts";
import { CopyWriter } from "../store/copy-rows.ts";
import type { AgentRateLimits } from "./rate-limit.ts";
import { ack, reject, statusError, statusName, welcome, type StatusCode } from "./replies.ts";
import type { Deferred, IngestMessage, RawBatch } from "../decode/raw-batch.ts";
import type { TargetCache } from "../store/targets.ts";
import { StreamGuard } from "./stream-guard.ts";
import type { AgentQuotas } from "./quotas.ts";

export interface IngestSettings {
  /** Plain-text gRPC: identity comes from Hello (loopback demos only). */
  insecure: boolean;
  maxFutureSkewMs: number;
  clockSkewWarnMs: number;
  lateAfterMs: number;
  /** Agent ids refused at connect ([agents].disabled). */
  disabledAgents: ReadonlySet<string>;
  /** The in-band size limit (shared/grpc/service.ts answers larger messages as undecoded). */
  maxMessageBytes: number;
}

export interface IngestDeps {
  /** Hello, Heartbeat and disconnect bookkeeping. */
  sql: Db;
  /** Batches: a pool of their own (batch-pool.ts). */
  batches: BatchPool;
  targets: TargetCache;
  metrics: AggregatorMetrics;
  /** Told of every committed batch, in order, after its Acks are written (observers.ts). */
  observers: readonly PostCommitObserver[];
  logger: Logger;
  limits: AgentRateLimits;
  /** What one agent may cost: streams, message rates, targets, log lines (quotas.ts). */
  quotas: AgentQuotas;
  settings: IngestSettings;
  serverVersion: string;
}

export type IngestCall = ServerDuplexStream<Decoded<IngestMessage>, AggregatorMessage>;

/**
 * Messages received but not yet handled before the stream stops reading. An
 * agent keeps a small window of batches in flight; this bounds the memory a
 * stream can hold when the database is slower than the agent.
 */
const MAX_QUEUED_MESSAGES = 16;

type Queued = { message: Decoded<IngestMessage>; receivedAt: number };

/** The batch a queued message carries, if it is one. */
function batchOf(q: Queued | undefined): RawBatch | null {
  return q !== undefined && q.message.ok && q.message.message.case === "rawBatch"
    ? q.message.message.value
    : null;
}

export class AgentStream {
  readonly #call: IngestCall;
  readonly #deps: IngestDeps;
  #log: Logger;
  readonly #queue: Queued[] = [];
  readonly #reader = new BatchReader();
  /** The COPY columns of the batches in hand; reused, as a stream stores one group at a time. */
  readonly #columns = new CopyWriter();
  #identity: Identity | null = null;
  #connectedAt: Date | null = null;
  #processing: Promise<void> | null = null;
  #closed = false;
  #halfClosed = false;
  readonly #order = new BatchOrder();
  /** While a group is admitted after its first batch: replies in order, acks as placeholders. */
  #held: HeldReply[] | null = null;
  #skewWarned = false;
  /** This stream's share of its agent's quotas: stream count, Hello deadline, rates, targets, warnings. */
  readonly #guard: StreamGuard;
  /** Resolves when the stream has ended, for whoever waits on shutdown. */
  readonly done: Promise<void>;
  #resolveDone!: () => void;

  constructor(call: IngestCall, deps: IngestDeps) {
    this.#call = call;
    this.#deps = deps;
    this.#log = deps.logger.child({ peer: call.getPeer() });
    this.#guard = new StreamGuard(deps.quotas, deps.metrics, call.getPeer());
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  /**
   * Starts reading. `admission` is who the client certificate says this is
   * (admission/admit.ts, decided by the server before Hello); unused in
   * insecure mode, where Hello names the agent.
   */
  start(admission: Admission = admitCall(this.#call)): void {
    if (!this.#deps.settings.insecure) {
      if (!admission.ok) return this.#end(admission.code, admission.details, admission.reason);
      this.#identity = admission.identity;
      this.#log = this.#log.child({ site: admission.identity.site, agent: admission.identity.agent });
      const refused = this.#guard.count(admission.identity.agent);
      if (refused !== null) return this.#end(status.RESOURCE_EXHAUSTED, refused, "stream_quota");
    }
    this.#guard.startHelloDeadline((details) =>
      this.#end(status.DEADLINE_EXCEEDED, details, "hello_timeout"),
    );
    this.#call.on("data", (message: Decoded<IngestMessage>) => {
      this.#guard.helloCame();
      if (this.#closed) return;
      this.#queue.push({ message, receivedAt: performance.now() });
      if (this.#queue.length >= MAX_QUEUED_MESSAGES) this.#call.pause();
      this.#pump();
    });
    this.#call.on("end", () => {
      this.#halfClosed = true;
      this.#pump();
    });
    this.#call.on("cancelled", () => this.#finish());
    this.#call.on("error", () => this.#finish());
    this.#call.on("close", () => this.#finish());
  }

  /** Shutdown: finish the message in hand, abandon the rest unacked, end with UNAVAILABLE. */
  async drain(): Promise<void> {
    this.#queue.length = 0;
    this.#call.pause();
    await this.#processing;
    this.#end(status.UNAVAILABLE, "aggregator shutting down; reconnect", "shutdown");
    await this.done;
  }

  /** Ends the stream from outside (its certificate was revoked while it was open). */
  end(code: StatusCode, details: string, reason: RefusalReason): void {
    this.#end(code, details, reason);
  }

  #pump(): void {
    if (this.#processing !== null || this.#closed) return;
    this.#processing = (async () => {
      while (!this.#closed) {
        const next = this.#queue.shift();
        if (next === undefined) break;
        const raw = this.#connectedAt === null ? null : batchOf(next);
        const group = raw === null ? null : [{ raw, receivedAt: next.receivedAt }];
        let results = raw?.count ?? 0;
        for (
          let more = batchOf(this.#queue[0]);
          group !== null && more !== null;
          more = batchOf(this.#queue[0])
        ) {
          if (results + more.count > MAX_MERGED_RESULTS) break;
          results += more.count;
          group.push({ raw: more, receivedAt: this.#queue.shift()!.receivedAt });
        }
        if (this.#queue.length < MAX_QUEUED_MESSAGES / 2) this.#call.resume();
        try {
          if (group !== null) await this.#batches(group);
          else await this.#handle(next.message, next.receivedAt);
        } catch (err) {
          this.#log.error({ err }, "ingest handler failed");
          this.#end(status.INTERNAL, `aggregator error: ${errorMessage(err)}`, "internal");
        }
      }
      if (this.#halfClosed && !this.#closed && this.#queue.length === 0) {
        this.#closed = true;
        this.#call.end();
        this.#finish();
      }
    })().finally(() => {
      this.#processing = null;
      if (this.#queue.length > 0 && !this.#closed) this.#pump();
    });
  }

  async #handle(decoded: Decoded<IngestMessage>, receivedAt: number): Promise<void> {
    if (this.#connectedAt === null) {
      if (!decoded.ok || decoded.message.case !== "hello") {
        return this.#end(
          status.FAILED_PRECONDITION,
          "the first message on a stream must be Hello",
          "no_hello",
        );
      }
      return this.#hello(decoded.message.value);
    }
    if (!decoded.ok) {
      const oversized = decoded.size > this.#deps.settings.maxMessageBytes;
      const code = oversized ? status.RESOURCE_EXHAUSTED : status.INVALID_ARGUMENT;
      return this.#reject(code, decoded.error);
    }
    const kind = decoded.message;
    switch (kind.case) {
      case "rawBatch":
        return this.#batches([{ raw: kind.value, receivedAt }]);
      case "heartbeat": {
        const refused = this.#guard.take("heartbeat");
        if (refused !== null) return this.#reject(status.RESOURCE_EXHAUSTED, refused.what);
        const hb = kind.value.decode();
        if (!hb.ok) return this.#reject(status.INVALID_ARGUMENT, hb.error);
        return this.#heartbeat(hb.message);
      }
      case "hello":
        return this.#reject(status.FAILED_PRECONDITION, "Hello was already received on this stream");
      case undefined:
        return this.#reject(status.INVALID_ARGUMENT, "message has no kind (Hello, Batch or Heartbeat)");
    }
  }

  async #hello(deferred: Deferred<Hello>): Promise<void> {
    const settings = this.#deps.settings;
    let id = this.#identity;
    // Each Hello costs database work: refused before it is even decoded when over the rate.
    if (id !== null && !this.#helloAllowed()) return;
    const decoded = deferred.decode();
    if (!decoded.ok) return this.#end(status.INVALID_ARGUMENT, decoded.error, "bad_hello");
    const hello = decoded.message;
    if (id === null) {
      // Insecure mode: nothing better than the claim.
      const problem = fleetNameProblem("site", hello.site) ?? fleetNameProblem("agent", hello.agentId);
      if (problem !== null) return this.#end(status.INVALID_ARGUMENT, `Hello: ${problem}`, "bad_hello");
      id = { site: hello.site, agent: hello.agentId };
      this.#identity = id;
      this.#log = this.#log.child({ site: id.site, agent: id.agent });
      const refused = this.#guard.count(id.agent);
      if (refused !== null) return this.#end(status.RESOURCE_EXHAUSTED, refused, "stream_quota");
      if (!this.#helloAllowed()) return;
    } else if (hello.site !== "" && hello.site !== id.site) {
      return this.#end(
        status.PERMISSION_DENIED,
        `Hello claims site ${JSON.stringify(hello.site)} but the certificate is for site ${JSON.stringify(id.site)}`,
        "site_mismatch",
      );
    } else if (hello.agentId !== "" && hello.agentId !== id.agent) {
      return this.#end(
        status.PERMISSION_DENIED,
        `Hello claims agent ${JSON.stringify(hello.agentId)} but the certificate is for agent ${JSON.stringify(id.agent)}`,
        "agent_mismatch",
      );
    }
    if (settings.disabledAgents.has(id.agent)) {
      return this.#end(
        status.PERMISSION_DENIED,
        `agent ${id.agent} is revoked (disabled in the aggregator config)`,
        "disabled",
      );
    }
    const announced = this.#guard.helloTargets(hello, id, this.#log);
    const skewMs = this.#skew(hello.wallClockUnixMs);
    let opened;
    try {
      opened = await openAgent(
        this.#deps.sql,
        this.#deps.targets,
        id,
        { agentVersion: hello.agentVersion, skewMs, backlog: hello.backlog, dropped: hello.dropped },
        announced,
      );
    } catch (err) {
      return this.#end(
        status.UNAVAILABLE,
        `database unavailable: ${errorMessage(err)}`,
        "database_unavailable",
      );
    }
    if (!opened.ok) return this.#end(status.PERMISSION_DENIED, opened.reason, opened.why);
    this.#connectedAt = opened.connectedAt;
    const m = this.#deps.metrics;
    m.agentsConnected.inc({ site: id.site });
    this.#report(hello.backlog, hello.dropped, skewMs);
    this.#log.info(
      {
        highWater: opened.highWater.toString(),
        backlog: hello.backlog.toString(),
        version: hello.agentVersion,
      },
      "agent connected",
    );
    this.#send(welcome(opened.highWater, this.#deps.serverVersion, this.#deps.settings.maxMessageBytes));
  }

  /** Batches queued together: checked and read one by one, stored together (batch-group.ts). */
  async #batches(group: readonly { raw: RawBatch; receivedAt: number }[]): Promise<void> {
    const nowMs = Date.now();
    this.#columns.reset();
    const admitted: Admitted[] = [];
    let held: HeldReply[];
    try {
      for (const { raw, receivedAt } of group) {
        const a = this.#admit(raw, receivedAt, nowMs);
        if (a === null) continue;
        // Replies to batches after this one wait for its commit.
        this.#held ??= [];
        this.#held.push({ ack: a });
        admitted.push(a);
      }
    } finally {
      held = this.#held ?? [];
      this.#held = null;
    }
    if (admitted.length === 0) return;
    const deps = {
      ...this.#deps,
      log: this.#log,
      warn: (fields: Record<string, unknown>, msg: string) => this.#warn(fields, msg),
      reader: this.#reader,
    };
    const out = await storeGroup(deps, this.#identity!, admitted, held, this.#columns.buffer, nowMs);
    if (!out.ok) return this.#end(out.code, out.details, out.reason);
    for (const reply of out.replies) this.#send(reply);
    notifyObservers(this.#deps.observers, out.committed, this.#log);
  }

  /**
   * A batch read and checked (batch-order.ts): the batch, or null when it
   * was answered instead (a Reject, or the Ack of an empty batch).
   */
  #admit(batch: RawBatch, receivedAt: number, nowMs: number): Admitted | null {
    const settings = this.#deps.settings;
    // Each batch costs a transaction: over the rate it is refused before it is read.
    const refusal = this.#guard.take("batch");
    if (refusal !== null) {
      if (batch.count === 0) this.#reject(status.RESOURCE_EXHAUSTED, refusal.what);
      else {
        const v = this.#order.admit(batch.firstSeq, batch.count, () => refusal);
        if (!v.ok) this.#reject(v.code, v.message, v.first, v.last);
      }
      return null;
    }
    // Results are read (decoded and validated) first: a result that does not
    // decode refuses the whole message, as decoding it on arrival did.
    const read = this.#reader.read(
      batch,
      nowMs,
      { maxFutureSkewMs: settings.maxFutureSkewMs, lateAfterMs: settings.lateAfterMs },
      this.#columns,
    );
    if (!read.ok) {
      this.#reject(status.INVALID_ARGUMENT, read.reason);
      return null;
    }
    const n = batch.count;
    this.#deps.metrics.batchSize.observe(n);
    if (n === 0) {
      this.#send(ack(this.#order.lastSeq));
      return null;
    }
    const agent = this.#identity!.agent;
    const newTargets = this.#guard.checkTargets(read, batch.firstSeq, this.#identity!);
    const v = this.#order.admit(
      batch.firstSeq,
      n,
      (count) => newTargets ?? this.#deps.limits.take(agent, count),
    );
    if (!v.ok) {
      this.#reject(v.code, v.message, v.first, v.last);
      return null;
    }
    return { first: v.first, last: v.last, count: n, receivedAt, rows: read.rows, invalid: read.invalid };
  }

  async #heartbeat(hb: Heartbeat): Promise<void> {
    const id = this.#identity!;
    const skewMs = this.#skew(hb.wallClockUnixMs);
    this.#report(hb.backlog, hb.dropped, skewMs);
    try {
      const stillEnabled = await recordHeartbeat(this.#deps.sql, id, {
        skewMs,
        backlog: hb.backlog,
        dropped: hb.dropped,
      });
      if (!stillEnabled)
        this.#end(status.PERMISSION_DENIED, `agent ${id.agent} is disabled (revoked)`, "disabled");
    } catch (err) {
      // The next batch will meet the same database and end the stream if it is down.
      this.#log.warn({ err: errorMessage(err) }, "heartbeat not recorded");
    }
  }

  #skew(wallClockMs: bigint): number | null {
    if (wallClockMs === 0n) return null;
    const skewMs = Date.now() - Number(wallClockMs);
    const off = Math.abs(skewMs) > this.#deps.settings.clockSkewWarnMs;
    // Once when it goes off and once when it is back, not on every heartbeat.
    if (off !== this.#skewWarned) {
      this.#skewWarned = off;
      if (off) this.#warn({ skewSeconds: skewMs / 1000 }, "agent clock is off");
      else this.#log.info({ skewSeconds: skewMs / 1000 }, "agent clock is back within the limit");
    }
    return skewMs;
  }

  #report(backlog: bigint, dropped: bigint, skewMs: number | null): void {
    const id = this.#identity!;
    const labels = { site: id.site, agent: id.agent };
    const m = this.#deps.metrics;
    m.agentLastSeen.set(labels, Date.now() / 1000);
    m.agentBacklog.set(labels, Number(backlog));
    m.agentDropped.set(labels, Number(dropped));
    if (skewMs !== null) m.agentClockSkew.set(labels, skewMs / 1000);
  }

  #reject(code: StatusCode, message: string, firstSeq = 0n, lastSeq = 0n): void {
    const name = statusName(code);
    this.#warn(
      { status: name, firstSeq: firstSeq.toString(), lastSeq: lastSeq.toString(), reason: message },
      "rejected",
    );
    this.#deps.metrics.rejects.inc({ code: name });
    this.#send(reject(code, message, firstSeq, lastSeq));
  }

  /** Whether this Hello is within the agent's rate; refused (stream ended) otherwise. */
  #helloAllowed(): boolean {
    const refused = this.#guard.take("hello");
    if (refused === null) return true;
    this.#end(
      status.RESOURCE_EXHAUSTED,
      `${refused.what}; reconnect in ${refused.retryAfterMs} ms`,
      "rate_limited",
    );
    return false;
  }

  #warn(fields: Record<string, unknown>, msg: string): void {
    this.#guard.warn(this.#log, fields, msg);
  }

  #send(message: AggregatorMessage): void {
    if (this.#held !== null) this.#held.push({ send: message });
    else if (!this.#closed) this.#call.write(message);
  }

  /** Ends the stream with an error status and stops reading; `reason` labels the refusal metric (refusals.ts). */
  #end(code: StatusCode, details: string, reason: RefusalReason = "other"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    const name = statusName(code);
    const fields = { status: name, refusal: reason, reason: details };
    if (code === status.UNAVAILABLE) this.#log.info(fields, "stream ended");
    else this.#warn(fields, "stream ended");
    this.#deps.metrics.streamsRefused.inc({ code: name, reason });
    this.#call.emit("error", statusError(code, details));
    this.#finish();
  }

  #finish(): void {
    this.#guard.release(this.#log);
    this.#closed = true;
    this.#queue.length = 0;
    if (this.#connectedAt !== null && this.#identity !== null) {
      const id = this.#identity;
      const at = this.#connectedAt;
      this.#connectedAt = null;
      this.#deps.metrics.agentsConnected.dec({ site: id.site });
      markDisconnected(this.#deps.sql, id, at).catch((err: unknown) =>
        this.#log.debug({ err: errorMessage(err) }, "could not clear connected_at"),
      );
    }
    this.#resolveDone();
  }
}
