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
import type { Wakeup } from "./wakeup.ts";
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
  /** Set when the aggregator refused a batch for now: reconnect after this rather than the connect backoff. */
  retryAfterMs?: number | null;
}

interface InFlight {
  first: number;
  last: number;
  sentAt: number;
}

export async function runSession(deps: SessionDeps, stop: AbortSignal): Promise<SessionOutcome> {
  const { buffer, options, logger, counters, wake, now } = deps;
  const call: ClientDuplexStream<Outbound, AggregatorMessage> = deps.client.makeBidiStreamRequest(
    STREAM_PATH,
    serializeOutbound,
    deserializeInbound,
  );

  /** Waits (for 'drain') that the end of the stream or a stop must cut short. */
  const interrupts = new Set<() => void>();
  let ended = false;
  let endError: unknown = null;
  let resolveEnded!: () => void;
  const endedPromise = new Promise<void>((resolve) => (resolveEnded = resolve));
  const end = (err: unknown): void => {
    if (ended) return;
    ended = true;
    endError = err;
    resolveEnded();
    for (const interrupt of [...interrupts]) interrupt();
    wake.notify();
  };

  let welcomed = false;
  let resolveWelcome!: () => void;
  const welcomePromise = new Promise<void>((resolve) => (resolveWelcome = resolve));
  let cursor = 0; // last seq sent on this stream
  let inflight: InFlight[] = [];
  let retryAfterMs: number | null = null;

  const ack = (upTo: number): void => {
    if (upTo > counters.ackedSeq) {
      counters.ackedResults += buffer.ackUpTo(upTo);
      counters.ackedSeq = upTo;
      for (const [first] of counters.limitedRetries) if (first <= upTo) counters.limitedRetries.delete(first);
    } else if (welcomed) {
      return;
    }
    cursor = Math.max(cursor, upTo);
    inflight = inflight.filter((b) => b.last > upTo);
    if (welcomed) deps.retryBackoff.reset();
    if (counters.refusedForNow !== null && upTo >= counters.refusedForNow.last) counters.refusedForNow = null;
    wake.notify();
    deps.changed();
  };

  const discard = (first: number, last: number): void => {
    counters.rejected += buffer.discard(first, last);
    inflight = inflight.filter((b) => b.last < first || b.first > last);
  };

  /**
   * A batch refused for now (rate limit, database busy) ends this stream, and
   * the next one starts after a delay from the aggregator's high-water mark.
   * Rewinding in-stream instead would need the aggregator to refuse every later
   * batch already in flight too; a fresh stream needs nothing of it but that it
   * does not commit batches that arrive after one it refused on the same stream.
   */
  const retryLater = (first: number, last: number, fields: object, why: string): void => {
    counters.refusedForNow = { first, last };
    retryAfterMs = deps.retryBackoff.nextDelayMs();
    logger.warn({ ...fields, retryInMs: retryAfterMs }, why);
    end(new SmbfleetError("STREAM_REJECTED", `aggregator refused results ${first}..${last} for now`));
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
    const action = rejectAction(r.code);
    switch (action) {
      case "discard":
        logger.error(fields, `aggregator refused results ${first}..${last} for good: discarding them`);
        discard(first, last);
        wake.notify();
        break;
      case "retry":
        retryLater(first, last, fields, "aggregator refused a batch for now; reconnecting to resend it");
        break;
      case "retry_limited": {
        const tries = (counters.limitedRetries.get(first) ?? 0) + 1;
        counters.limitedRetries.set(first, tries);
        if (tries <= MAX_LIMITED_RETRIES) {
          retryLater(
            first,
            last,
            { ...fields, tries },
            "aggregator refused a batch unexpectedly; resending it",
          );
        } else {
          // One poison batch must not stall everything behind it.
          logger.error(
            { ...fields, tries },
            `aggregator keeps refusing results ${first}..${last}: discarding them`,
          );
          discard(first, last);
          counters.limitedRetries.delete(first);
          retryLater(first, last, fields, "reconnecting after discarding a refused batch");
          counters.refusedForNow = null;
        }
        break;
      }
    }
    deps.changed();
  };

  call.on("data", (msg: AggregatorMessage) => {
    try {
      switch (msg.kind.case) {
        case "welcome": {
          if (welcomed) return logger.warn("second Welcome on one stream ignored");
          const highWater = Number(msg.kind.value.highWaterSeq);
          const refused = counters.refusedForNow;
          if (refused !== null && highWater >= refused.first) {
            // The aggregator committed past a batch it refused: those results are
            // counted as delivered by its own word; say so, loudly, once.
            logger.error(
              { highWater, refusedFirstSeq: refused.first, refusedLastSeq: refused.last },
              "aggregator's high-water mark passed results it had refused for now; they may be missing at HQ",
            );
            counters.refusedForNow = null;
          }
          // A high-water mark this buffer never reached means the buffer file was
          // replaced: renumber rather than have new results skipped as duplicates.
          buffer.ensureSeqAbove(highWater);
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
      end(err);
    }
  });
  call.on("error", (err: ServiceError) => end(err));
  call.on("end", () => end(new SmbfleetError("STREAM_CLOSED", "aggregator ended the stream")));
  let resolveStopped!: () => void;
  const stoppedPromise = new Promise<void>((resolve) => (resolveStopped = resolve));
  const onStop = (): void => {
    resolveStopped();
    for (const interrupt of [...interrupts]) interrupt();
    wake.notify();
  };
  if (stop.aborted) onStop();
  else stop.addEventListener("abort", onStop, { once: true });

  let nextHeartbeat = now() + options.heartbeatIntervalMs;
  let nextLimits = now() + options.limitsIntervalMs;
  const tick = setInterval(
    () => {
      if (ended || !welcomed) return;
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
        end(err);
        return;
      }
      const oldest = inflight[0];
      if (oldest !== undefined && t - oldest.sentAt > options.ackTimeoutMs) {
        end(
          new SmbfleetError(
            "STREAM_CLOSED",
            `no ack for results ${oldest.first}..${oldest.last} within ${options.ackTimeoutMs} ms`,
          ),
        );
      }
    },
    Math.min(TICK_MS, options.heartbeatIntervalMs, options.ackTimeoutMs),
  );

  const drainedOrEnded = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        call.off("drain", done);
        interrupts.delete(done);
        resolve();
      };
      if (ended || stop.aborted) return resolve();
      call.on("drain", done);
      interrupts.add(done);
    });

  try {
    call.write(deps.hello());
    const welcomeTimer = new Promise<"timeout">((resolve) => {
      const t = setTimeout(() => resolve("timeout"), options.welcomeTimeoutMs);
      void Promise.race([welcomePromise, endedPromise, stoppedPromise]).then(() => clearTimeout(t));
    });
    const first = await Promise.race([
      welcomePromise.then(() => "welcome" as const),
      endedPromise,
      stoppedPromise,
      welcomeTimer,
    ]);
    if (first === "timeout")
      end(new SmbfleetError("STREAM_CLOSED", `no Welcome within ${options.welcomeTimeoutMs} ms`));
    if (ended) return { welcomed, error: endError, retryAfterMs };
    if (!welcomed) return { welcomed, error: null }; // stopped before the aggregator answered

    counters.connected = true;
    counters.connects++;
    deps.changed();
    logger.info(
      { ackedSeq: counters.ackedSeq, backlog: buffer.backlog().count },
      "connected to the aggregator",
    );

    while (!ended && !stop.aborted) {
      const t = now();
      if (inflight.length >= options.window) {
        await wake.wait();
        continue;
      }
      const records = buffer.read(cursor, options.maxBatchResults, options.maxBatchBytes);
      const head = records[0];
      const tail = records[records.length - 1];
      if (head === undefined || tail === undefined) {
        await wake.wait();
        continue;
      }
      const bytes = encodeBatchMessage(
        head.seq,
        records.map((r) => r.bytes),
      );
      inflight.push({ first: head.seq, last: tail.seq, sentAt: t });
      cursor = tail.seq;
      counters.sentBatches++;
      counters.sentResults += records.length;
      if (!call.write(bytes)) await drainedOrEnded();
    }

    if (!ended) {
      // Stopping: give acks of what is already sent a moment, then close our side.
      const deadline = now() + options.stopGraceMs;
      while (!ended && inflight.length > 0 && now() < deadline) await wake.wait(deadline - now());
      call.end();
      await Promise.race([endedPromise, new Promise((r) => setTimeout(r, HALF_CLOSE_WAIT_MS).unref())]);
      return { welcomed, error: null };
    }
    return { welcomed, error: endError, retryAfterMs };
  } catch (err) {
    return {
      welcomed,
      error: new SmbfleetError("STREAM_CLOSED", `streaming: ${errorMessage(err)}`, { cause: err }),
    };
  } finally {
    counters.connected = false;
    clearInterval(tick);
    stop.removeEventListener("abort", onStop);
    end(null);
    call.cancel();
    call.removeAllListeners("data");
    // An error after cancel() (CANCELLED) must still have a listener, or it is thrown.
    call.removeAllListeners("error");
    call.on("error", () => {});
    deps.changed();
  }
}
