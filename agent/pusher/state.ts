// What the sender knows about itself: the counters behind its gauges, and the
// per-batch retry bookkeeping that must outlive a single stream.

/** A snapshot for /metrics and logs. Counters count since the agent started; dropped is ever (persisted). */
export interface ShipperStatus {
  /** A stream is open and the aggregator answered Hello with Welcome. */
  connected: boolean;
  /** Results buffered and not yet acknowledged. */
  backlog: number;
  backlogBytes: number;
  /** When the oldest buffered result entered the buffer (epoch ms), null when empty. */
  oldestBufferedMs: number | null;
  /** Results the buffer dropped to stay within its limits, ever. */
  dropped: number;
  /** Results the aggregator refused for good and that were discarded. */
  rejected: number;
  /** Reject messages received, whatever was done with them. */
  rejects: number;
  sentBatches: number;
  sentResults: number;
  ackedResults: number;
  /** Streams that reached Welcome. */
  connects: number;
  /** Results that could not be written to the buffer (disk I/O error); they are lost and logged. */
  appendFailures: number;
  /** Highest seq the aggregator acknowledged (0 before the first Welcome). */
  ackedSeq: number;
}

/** Receives a fresh status after every change worth showing (connect, ack, reject, heartbeat). */
export interface ShipperMetrics {
  update(status: ShipperStatus): void;
}

/** The counters the sender keeps; the buffer's figures join them in a ShipperStatus. */
export interface ShipperCounters extends Omit<
  ShipperStatus,
  "backlog" | "backlogBytes" | "oldestBufferedMs" | "dropped"
> {
  /** Refusals so far of the batch starting at a seq, for retry_limited rejects. */
  limitedRetries: Map<number, number>;
}

export function newCounters(): ShipperCounters {
  return {
    connected: false,
    rejected: 0,
    rejects: 0,
    sentBatches: 0,
    sentResults: 0,
    ackedResults: 0,
    connects: 0,
    appendFailures: 0,
    ackedSeq: 0,
    limitedRetries: new Map(),
  };
}
