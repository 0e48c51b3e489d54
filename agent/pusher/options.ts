// Every limit of the sender, each a named default with its reason.
import { DEFAULT_BACKOFF, type BackoffOptions } from "../../shared/backoff.ts";

export interface ShipperOptions {
  /** Most results in one Batch message. */
  maxBatchResults: number;
  /** Most result bytes in one Batch message (a single larger result still goes alone). */
  maxBatchBytes: number;
  /** Most Batch messages sent and not yet acknowledged. */
  window: number;
  /** A Heartbeat (clock, backlog, dropped) is sent this often. */
  heartbeatIntervalMs: number;
  /** The buffer's age limit is enforced this often even when no result arrives. */
  limitsIntervalMs: number;
  /** How long one connection attempt may take before it counts as failed. */
  connectTimeoutMs: number;
  /** How long the aggregator may take to answer Hello with Welcome. */
  welcomeTimeoutMs: number;
  /** A batch not acknowledged within this ends the stream; the reconnect resends from the acked point. */
  ackTimeoutMs: number;
  /** On stop, how long to wait for acks of batches already sent before closing. */
  stopGraceMs: number;
  /** Reconnect delays. */
  backoff: BackoffOptions;
  /** Delays before resending a batch the aggregator refused for now (RESOURCE_EXHAUSTED, UNAVAILABLE). */
  retryBackoff: BackoffOptions;
}

export const DEFAULT_SHIPPER_OPTIONS: ShipperOptions = {
  // FACTS.md: gRPC cost is per message (~85k messages/s, 1.7M records/s at 100
  // per message). 500 results (~150 KB) make the per-message cost negligible and
  // are one multi-row INSERT/COPY at the aggregator, which also pays per statement.
  maxBatchResults: 500,
  // Well under grpc-js's default 4 MiB receive limit and any sane server limit,
  // so that a batch of unusually large results (long failure messages) still fits.
  maxBatchBytes: 1024 * 1024,
  // Eight batches cover the round trip plus one PostgreSQL commit on a WAN link
  // (4,000 results in flight) while bounding what is resent after a reconnect
  // and what the sender holds in memory (≤ 8 MiB).
  window: 8,
  // The aggregator declares an agent offline after a few missed heartbeats; 15 s
  // keeps that detection under a minute at ~100 bytes per beat.
  heartbeatIntervalMs: 15_000,
  // Age limits are in days; a minute is plenty precise and costs one indexed lookup.
  limitsIntervalMs: 60_000,
  // TLS handshake to HQ over a WAN takes well under a second; 10 s covers a slow
  // link without leaving the agent blind for long when HQ is unreachable.
  connectTimeoutMs: 10_000,
  // Welcome needs one PostgreSQL lookup of the high-water mark.
  welcomeTimeoutMs: 10_000,
  // A batch commit takes milliseconds; a minute without progress means the stream
  // or the server is stuck (PostgreSQL down, half-open TCP), and reconnecting is
  // the only way to find out which.
  ackTimeoutMs: 60_000,
  // Results are durable in the buffer anyway; waiting only avoids resending a
  // few batches after restart, so shutdown stays quick (SIGTERM grace is ~10 s).
  stopGraceMs: 2_000,
  backoff: DEFAULT_BACKOFF,
  // A rate-limited agent retries after about a second and slows down to 10 s,
  // well inside the time a token bucket needs to refill.
  retryBackoff: { initialMs: 1_000, maxMs: 10_000, factor: 2, jitter: 0.2 },
};

export function shipperOptions(overrides: Partial<ShipperOptions> = {}): ShipperOptions {
  return { ...DEFAULT_SHIPPER_OPTIONS, ...overrides };
}
