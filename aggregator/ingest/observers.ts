// What happens after a batch is committed, besides its Ack: each observer is
// told of the batch's stored results, in the order they were committed.
// Metrics is one observer (metrics/ingest-observer.ts); the incident engine
// will be another. An observer runs after the Acks are written and must not
// block: one that needs I/O queues the work and returns. A throwing observer
// is logged and skipped, never allowed to end the stream or stop the others.
import { errorMessage } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import type { ResultForMetrics } from "../metrics/aggregator-metrics.ts";
import type { Identity } from "./store/agents.ts";

/** A stored result as observers see it. */
export interface CommittedResult extends ResultForMetrics {
  seq: bigint;
}

export interface CommittedBatch {
  /** Site and agent, from the certificate. */
  identity: Identity;
  /** Lowest and highest sequence the commit covered (stored, duplicate or quarantined). */
  first: bigint;
  last: bigint;
  /**
   * The results written by this commit, in seq order (not the duplicates).
   * Built on the first call and shared by every observer: objects made after
   * the commit die young, which is what keeps ingest's GC cheap.
   */
  results(): readonly CommittedResult[];
  storedCount: number;
  duplicates: number;
  quarantined: readonly { seq: bigint; reason: string }[];
  /** When the aggregator received the batch (Date.now()). */
  receivedAtMs: number;
}

export interface PostCommitObserver {
  /** For logs: which observer failed. */
  readonly name: string;
  committed(batch: CommittedBatch): void;
}

/** Tells every observer; a failing one is logged and the rest still run. */
export function notifyObservers(
  observers: readonly PostCommitObserver[],
  batch: CommittedBatch,
  log: Logger,
): void {
  for (const o of observers) {
    try {
      o.committed(batch);
    } catch (err) {
      log.error({ err: errorMessage(err), observer: o.name }, "post-commit observer failed");
    }
  }
}
