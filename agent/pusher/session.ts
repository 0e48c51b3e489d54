// One stream to the aggregator, from Hello to its end: wait for Welcome, drop
// what the aggregator already has, then stream batches from the buffer with a
// bounded window, delete only what is acked, heartbeat, and handle Rejects.
// Any end (error, server close, ack timeout) returns to the shipper, which
// reconnects; the next stream resumes from the aggregator's high-water mark.
import type { Client, ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import type { AgentMessage, AggregatorMessage, Reject } from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import type { Backoff } from "../../shared/backoff.ts";
import { SmbfleetError, errorMessage } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import type { ResultBuffer } from "../buffer/buffer.ts";
import type { ShipperOptions } from "./options.ts";
import { MAX_LIMITED_RETRIES, rejectAction } from "./reject-policy.ts";
import type { ShipperCounters } from "./state.ts";
import { StreamEnd } from "./stream-end.ts";
import type { Wakeup } from "./wakeup.ts";
import { SendWindow } from "./window.ts";
import {
  STREAM_PATH,
  deserializeInbound,
  encodeBatchMessage,
  heartbeatMessage,
  serializeOutbound,
  type Outbound,
} from "./wire.ts";

/**
 * Housekeeping runs this often (or at the heartbeat interval, if shorter):
 * heartbeats, limits and the ack timeout are due at multiples of seconds, so a
 * 1 s tick is precise enough and costs nothing.
 */
const TICK_MS = 1_000;
/** After end() on stop, how long the aggregator may take to close its side before the call is cancelled. */
const HALF_CLOSE_WAIT_MS = 1_000;

export interface SessionDeps {
  client: Client;
  buffer: ResultBuffer;
  hello: () => AgentMessage;
  options: ShipperOptions;
  logger: Logger;
  counters: ShipperCounters;
  /** Notified by accept() and by this session's own events. */
  wake: Wakeup;
  /** Called after every change worth publishing. */
  changed: () => void;
  now: () => number;
  /** Delays after a batch refused for now; reset when an ack makes progress. Outlives the stream. */
  retryBackoff: Backoff;
}

export interface SessionOutcome {
  welcomed: boolean;
  /** Why the stream ended; null on a clean stop. */
  error: unknown;
  /** Set when the stream was ended to resend a refused batch: reconnect after this, not the connect backoff. */
  retryAfterMs?: number | null;
}

export async function runSession(deps: SessionDeps, stop: AbortSignal): Promise<SessionOutcome> {
  const { buffer, options, logger, counters, wake, now } = deps;
  const call: ClientDuplexStream<Outbound, AggregatorMessage> = deps.client.makeBidiStreamRequest(
    STREAM_PATH,
    serializeOutbound,
    deserializeInbound,
  );
  const stream = new StreamEnd(stop, () => wake.notify());
  let welcomed = false;
  let resolveWelcome!: () => void;
  const welcomePromise = new Promise<void>((resolve) => (resolveWelcome = resolve));
  const window = new SendWindow(options.window, 0);
  let retryAfterMs: number | null = null;
  /** Result bytes per batch: the sender's own limit, lowered to fit the aggregator's (Welcome). */
  let batchBytes = options.maxBatchBytes;
  let messageLimit = Infinity;

  const ack = (upTo: number): void => {
    if (upTo > counters.ackedSeq) {
      counters.ackedResults += buffer.ackUpTo(upTo);
      counters.ackedSeq = upTo;
      for (const first of counters.limitedRetries.keys()) {
        if (first <= upTo) counters.limitedRetries.delete(first);
      }
      if (welcomed) deps.retryBackoff.reset();
    }
    window.acked(upTo);
    wake.notify();
    deps.changed();
  };

  const onReject = (r: Reject): void => {
    counters.rejects++;
    const first = Number(r.firstSeq);
    const last = Number(r.lastSeq);
    const fields = { code: r.code, message: r.message, firstSeq: first, lastSeq: last };
    if (first === 0 || last < first) {
      // Not attributable to a batch (undecodable message, a refused heartbeat):
      // nothing to resend or discard; a batch left unacked by it is caught by the ack timeout.
      logger.warn(fields, "aggregator rejected a message");
      return;
    }
    if (window.takeStale(first)) {
      logger.debug(fields, "refusal of a batch sent before the rewind; it is being resent");
      return;
    }
    switch (rejectAction(r.code)) {
      case "discard":
        logger.error(
          fields,
          `aggregator refused results ${first}..${last} for good; they will not be resent`,
        );
        window.refuse(first, last);
        break;
      case "retry": {
        if (!window.isInFlight(first)) return logger.warn(fields, "refusal of a batch not in flight ignored");
        const delay = deps.retryBackoff.nextDelayMs();
        window.rewind(first, now() + delay);
        logger.warn({ ...fields, retryInMs: delay }, "aggregator refused a batch for now; resending it");
        break;
      }
      case "retry_limited": {
        const tries = (counters.limitedRetries.get(first) ?? 0) + 1;
        counters.limitedRetries.set(first, tries);
        if (tries > MAX_LIMITED_RETRIES) {
          // One poison batch must not stall everything behind it.
          logger.error(
            { ...fields, tries },
            `aggregator keeps refusing results ${first}..${last}; discarding them`,
          );
          counters.rejected += buffer.discard(first, last);
          counters.limitedRetries.delete(first);
        }
        // The aggregator's state after an unexpected refusal is unknown: a fresh
        // stream resumes from its high-water mark, whatever it did with the rest.
        retryAfterMs = deps.retryBackoff.nextDelayMs();
        if (tries <= MAX_LIMITED_RETRIES) {
          logger.warn(
            { ...fields, tries, retryInMs: retryAfterMs },
            "aggregator refused a batch unexpectedly",
          );
        }
        stream.end(new SmbfleetError("STREAM_REJECTED", `aggregator refused results ${first}..${last}`));
        break;
      }
    }
    wake.notify();
    deps.changed();
  };

  call.on("data", (msg: AggregatorMessage) => {
    try {
      switch (msg.kind.case) {
        case "welcome": {
          if (welcomed) return logger.warn("second Welcome on one stream ignored");
          const highWater = Number(msg.kind.value.highWaterSeq);
          // A high-water mark this buffer never reached means the buffer file was
          // replaced: renumber rather than have new results skipped as duplicates.
          buffer.ensureSeqAbove(highWater);
          const limit = msg.kind.value.maxMessageBytes;
          if (limit > 0) {
            messageLimit = limit;
            batchBytes = Math.min(options.maxBatchBytes, batchBudget(limit, options.maxBatchResults));
          }
          ack(highWater);
          welcomed = true;
          resolveWelcome();
          return;
        }
        case "ack":
          if (welcomed) ack(Number(msg.kind.value.upToSeq));
          return;
        case "reject":
          return onReject(msg.kind.value);
        case undefined:
          return logger.warn("aggregator sent an empty message");
      }
    } catch (err) {
      // The buffer failed under us (disk I/O): end the stream; the reconnect starts over from the acked point.
      stream.end(err);
    }
  });
  call.on("error", (err: ServiceError) => stream.end(err));
  call.on("end", () => stream.end(new SmbfleetError("STREAM_CLOSED", "aggregator ended the stream")));

  let nextHeartbeat = now() + options.heartbeatIntervalMs;
  let nextLimits = now() + options.limitsIntervalMs;
  const tick = setInterval(
    () => {
      if (stream.ended || !welcomed) return;
      const t = now();
      try {
        if (t >= nextLimits) {
          nextLimits = t + options.limitsIntervalMs;
          buffer.enforceLimits();
        }
        if (t >= nextHeartbeat) {
          nextHeartbeat = t + options.heartbeatIntervalMs;
          // Heartbeats are ~30 bytes; they go out even when the stream is applying backpressure.
          call.write(heartbeatMessage(t, buffer.backlog().count, buffer.dropped()));
          deps.changed();
        }
      } catch (err) {
        stream.end(err);
        return;
      }
      const oldest = window.oldest();
      if (oldest !== undefined && t - oldest.sentAt > options.ackTimeoutMs) {
        const range = `${oldest.first}..${oldest.last}`;
        stream.end(
          new SmbfleetError("STREAM_CLOSED", `no ack for results ${range} within ${options.ackTimeoutMs} ms`),
        );
      }
    },
    Math.min(TICK_MS, options.heartbeatIntervalMs, options.ackTimeoutMs),
  );

  try {
    call.write(deps.hello());
    const first = await stream.race(welcomePromise, options.welcomeTimeoutMs);
    if (first === "timeout") {
      stream.end(new SmbfleetError("STREAM_CLOSED", `no Welcome within ${options.welcomeTimeoutMs} ms`));
    }
    if (stream.ended) return { welcomed, error: stream.error, retryAfterMs };
    if (!welcomed) return { welcomed, error: null }; // stopped before the aggregator answered

    counters.connected = true;
    counters.connects++;
    deps.changed();
    logger.info(
      { ackedSeq: counters.ackedSeq, backlog: buffer.backlog().count },
      "connected to the aggregator",
    );

    while (!stream.ended && !stop.aborted) {
      const t = now();
      if (window.resumeAt > t) {
        await wake.wait(window.resumeAt - t);
        continue;
      }
      if (window.full()) {
        await wake.wait();
        continue;
      }
      const records = buffer.read(window.cursor, options.maxBatchResults, batchBytes);
      const head = records[0];
      const tail = records[records.length - 1];
      if (head === undefined || tail === undefined) {
        await wake.wait();
        continue;
      }
      if (records.length === 1 && head.bytes.length > batchBudget(messageLimit, 1)) {
        // One result larger than the aggregator takes can never be delivered;
        // resending it would stall everything behind it. Counted and logged.
        logger.error(
          { seq: head.seq, bytes: head.bytes.length, maxMessageBytes: messageLimit },
          "a buffered result is larger than the aggregator accepts; discarding it",
        );
        counters.rejected += buffer.discard(head.seq, head.seq);
        continue;
      }
      const bytes = encodeBatchMessage(
        head.seq,
        records.map((r) => r.bytes),
      );
      window.sent(head.seq, tail.seq, t);
      counters.sentBatches++;
      counters.sentResults += records.length;
      if (!call.write(bytes)) await stream.until(call, "drain");
    }

    if (stream.ended) return { welcomed, error: stream.error, retryAfterMs };
    // Stopping: give acks of what is already sent a moment, then close our side.
    const deadline = now() + options.stopGraceMs;
    while (!stream.ended && window.count > 0 && now() < deadline) await wake.wait(deadline - now());
    call.end();
    await stream.race(null, HALF_CLOSE_WAIT_MS, { ignoreStop: true });
    return { welcomed, error: null };
  } catch (err) {
    const error = new SmbfleetError("STREAM_CLOSED", `streaming: ${errorMessage(err)}`, { cause: err });
    return { welcomed, error, retryAfterMs };
  } finally {
    counters.connected = false;
    clearInterval(tick);
    stream.end(null);
    stream.dispose();
    call.cancel();
    call.removeAllListeners("data");
    // An error after cancel() (CANCELLED) must still have a listener, or it is thrown.
    call.removeAllListeners("error");
    call.on("error", () => {});
    try {
      // Refused for good and never acked: out of the buffer, so never resent.
      for (const r of window.takeRefused()) counters.rejected += buffer.discard(r.first, r.last);
    } catch (err) {
      logger.error({ err: errorMessage(err) }, "could not discard refused results; they will be sent again");
    }
    deps.changed();
  }
}

/**
 * Result bytes that fit in one message of limit bytes: the Batch envelope
 * costs a few bytes per result (tag and length) and a few for first_seq and
 * the AgentMessage wrapper; 16 per result and 1 KiB overall cover them.
 */
export function batchBudget(limit: number, results: number): number {
  return limit - 1024 - 16 * results;
}
