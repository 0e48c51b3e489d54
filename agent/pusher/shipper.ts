// The agent's sender: accept() commits each result to the buffer and wakes the
// stream; a loop keeps one stream to the aggregator open, reconnecting with
// capped jittered backoff, and every stream resumes after the aggregator's
// high-water mark. accept() is a synchronous append (~0.2 ms, fsync included)
// and never waits for the network, so the scheduler is never slowed by it.
import { Client, status as grpcStatus, type ChannelOptions } from "@grpc/grpc-js";
import { Backoff, sleep } from "../../shared/backoff.ts";
import type { AggregatorSection } from "../../shared/config/types.ts";
import { errorMessage, isSmbfleetError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import type { ProbeResult, TargetRef } from "../../shared/result.ts";
import type { ResultBuffer } from "../buffer/buffer.ts";
import { channelCredentials } from "./credentials.ts";
import { shipperOptions, type ShipperOptions } from "./options.ts";
import { runSession, type SessionOutcome } from "./session.ts";
import { newCounters, type ShipperMetrics, type ShipperStatus } from "./state.ts";
import { Wakeup } from "./wakeup.ts";
import { helloMessage } from "./wire.ts";

export interface ShipperConfig {
  buffer: ResultBuffer;
  aggregator: AggregatorSection;
  site: string;
  agentId: string;
  agentVersion: string;
  targets: readonly TargetRef[];
  logger: Logger;
  metrics?: ShipperMetrics;
  options?: Partial<ShipperOptions>;
  /** Wall clock for Hello/Heartbeat and timers; tests may replace it. */
  now?: () => number;
}

export interface Shipper {
  /** Commits the result to the buffer and wakes the sender. Never throws, never waits. */
  accept(result: ProbeResult): void;
  /** A stream is open and welcomed. */
  connected(): boolean;
  status(): ShipperStatus;
  /** Stops sending, waits briefly for acks of what was sent, closes the stream. Does not close the buffer. */
  stop(): Promise<void>;
}

/** Statuses after which reconnecting cannot succeed until an operator acts; logged as errors. */
const OPERATOR_STATUSES: ReadonlySet<number> = new Set([
  grpcStatus.UNAUTHENTICATED,
  grpcStatus.PERMISSION_DENIED,
  grpcStatus.UNIMPLEMENTED,
]);

export function startShipper(config: ShipperConfig, signal: AbortSignal): Shipper {
  const { buffer, aggregator, logger } = config;
  const options = shipperOptions(config.options);
  const now = config.now ?? Date.now;
  const counters = newCounters();
  const wake = new Wakeup();
  const stopper = new AbortController();
  const log = logger.child({ component: "shipper", aggregator: aggregator.url });

  const status = (): ShipperStatus => {
    const backlog = buffer.backlog();
    const { limitedRetries: _, ...rest } = counters;
    return {
      ...rest,
      backlog: backlog.count,
      backlogBytes: backlog.bytes,
      oldestBufferedMs: backlog.oldestMs,
      dropped: buffer.dropped(),
    };
  };
  const changed = (): void => {
    if (config.metrics === undefined) return;
    try {
      config.metrics.update(status());
    } catch (err) {
      log.warn({ err: errorMessage(err) }, "updating shipper metrics failed");
    }
  };

  const channelOptions: ChannelOptions = {
    // Reconnecting is this loop's job (with its own backoff); grpc-js's transparent retries would only hide it.
    "grpc.enable_retries": 0,
    "grpc.max_reconnect_backoff_ms": options.backoff.maxMs,
    "grpc.initial_reconnect_backoff_ms": options.backoff.initialMs,
  };

  const connectOnce = async (): Promise<SessionOutcome> => {
    let client: Client | undefined;
    try {
      client = new Client(aggregator.url, await channelCredentials(aggregator, log), channelOptions);
      await waitForReady(client, options.connectTimeoutMs, stopper.signal);
      if (stopper.signal.aborted) return { welcomed: false, error: null };
      const hello = (): ReturnType<typeof helloMessage> =>
        helloMessage({
          agentVersion: config.agentVersion,
          site: config.site,
          agentId: config.agentId,
          targets: config.targets,
          backlog: buffer.backlog().count,
          dropped: buffer.dropped(),
          nowMs: now(),
        });
      return await runSession(
        { client, buffer, hello, options, logger: log, counters, wake, changed, now, retryBackoff },
        stopper.signal,
      );
    } catch (err) {
      return { welcomed: false, error: err };
    } finally {
      client?.close();
    }
  };

  const retryBackoff = new Backoff(options.retryBackoff);
  const loop = (async () => {
    const backoff = new Backoff(options.backoff);
    while (!stopper.signal.aborted) {
      const outcome = await connectOnce();
      if (outcome.welcomed) backoff.reset();
      if (stopper.signal.aborted) break;
      const delayMs = outcome.retryAfterMs ?? backoff.nextDelayMs();
      const code = (outcome.error as { code?: unknown } | null)?.code;
      const fields = { err: errorMessage(outcome.error), code, reconnectInMs: delayMs };
      if (outcome.retryAfterMs !== undefined && outcome.retryAfterMs !== null) {
        // Already logged by the session, with the refusal's code and message.
      } else if (typeof code === "number" && OPERATOR_STATUSES.has(code)) {
        log.error(fields, "aggregator refused this agent; retrying");
      } else if (
        isSmbfleetError(outcome.error, "CONFIG_INVALID") ||
        isSmbfleetError(outcome.error, "TLS_INVALID")
      ) {
        log.error(fields, "cannot connect with this TLS configuration; retrying");
      } else {
        log.warn(
          fields,
          outcome.welcomed ? "stream to the aggregator ended" : "connecting to the aggregator failed",
        );
      }
      if (!(await sleep(delayMs, stopper.signal))) break;
    }
  })();

  const stop = async (): Promise<void> => {
    stopper.abort();
    await loop;
  };
  if (signal.aborted) stopper.abort();
  else signal.addEventListener("abort", () => stopper.abort(), { once: true });

  return {
    accept(result) {
      try {
        buffer.append(result);
      } catch (err) {
        counters.appendFailures++;
        log.error(
          { err: errorMessage(err), target: result.target.name },
          "could not buffer a result; it is lost",
        );
      }
      wake.notify();
      changed();
    },
    connected: () => counters.connected,
    status,
    stop,
  };
}

/** Resolves when the channel is connected; rejects after timeoutMs; resolves early on stop. */
function waitForReady(client: Client, timeoutMs: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onStop = (): void => resolve();
    stop.addEventListener("abort", onStop, { once: true });
    client.waitForReady(Date.now() + timeoutMs, (err) => {
      stop.removeEventListener("abort", onStop);
      if (err) reject(new Error(`connecting within ${timeoutMs} ms: ${err.message}`, { cause: err }));
      else resolve();
    });
  });
}
