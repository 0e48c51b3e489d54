// Batches that were queued together on one stream, stored in one
// transaction (store.ts, copy-batch.ts), and the replies they get. The stream
// checks and reads each batch in order as if alone (its Rejects are held
// from the first admitted batch on); this commits the admitted ones
// together and then lists every reply in the order the batches came, each
// Ack after the commit. When the database keeps up, nothing queues and a
// group is one batch; when it falls behind, bigger COPYs cost it less per
// row (docs/benchmarks.md), so the stream catches up.
import { status } from "@grpc/grpc-js";
import type { AggregatorMessage } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import { errorMessage } from "../../../shared/errors.ts";
import type { Logger } from "../../../shared/logger.ts";
import type { AggregatorMetrics } from "../../metrics/aggregator-metrics.ts";
import type { CommittedBatch, CommittedResult } from "../observers.ts";
import type { Identity } from "../store/agents.ts";
import type { BatchReader, Quarantined } from "../decode/batch-reader.ts";
import { ack, quarantineReject, type StatusCode } from "./replies.ts";
import type { RefusalReason } from "../refusals.ts";
import type { ReadResult } from "../decode/result-reader.ts";
import type { BatchPool } from "../store/batch-pool.ts";
import { storeBatch } from "../store/store.ts";
import type { TargetCache } from "../store/targets.ts";

/**
 * Most results stored in one transaction when queued batches are merged:
 * past a few thousand rows a COPY's cost per row stops falling
 * (docs/benchmarks.md), while the first batch's Ack waits for all of them.
 */
export const MAX_MERGED_RESULTS = 8192;

/** A batch that passed its checks, waiting in its group for the commit. */
export interface Admitted {
  first: bigint;
  last: bigint;
  count: number;
  /** performance.now() at arrival, for the receive → ack latency metric. */
  receivedAt: number;
  rows: ReadResult[];
  invalid: Quarantined[];
}

/** A reply held until the group's commit; `ack` stands for that batch's Ack (and quarantine Reject). */
export type HeldReply = { send: AggregatorMessage } | { ack: Admitted };

export interface GroupDeps {
  batches: BatchPool;
  targets: TargetCache;
  metrics: AggregatorMetrics;
  log: Logger;
  /** A warning about the agent's input, within its log budget (log-gate.ts). */
  warn: (fields: Record<string, unknown>, msg: string) => void;
  reader: BatchReader;
}

export type GroupOutcome =
  /** Send `replies` in order, then tell the observers of `committed`. */
  | { ok: true; replies: AggregatorMessage[]; committed: CommittedBatch }
  /** Nothing of the group may be acked: the stream ends with this status. */
  | { ok: false; code: StatusCode; details: string; reason: RefusalReason };

/** Stores `admitted` (in seq order, COPY columns in `fields`) in one transaction and answers `held`. */
export async function storeGroup(
  deps: GroupDeps,
  id: Identity,
  admitted: readonly Admitted[],
  held: readonly HeldReply[],
  fields: Buffer,
  nowMs: number,
): Promise<GroupOutcome> {
  const head = admitted[0]!;
  const tail = admitted.at(-1)!;
  let outcome;
  try {
    outcome = await deps.batches.run((sql) =>
      storeBatch(
        sql,
        deps.targets,
        id,
        {
          first: head.first,
          last: tail.last,
          rows: admitted.length === 1 ? head.rows : admitted.flatMap((a) => a.rows),
          invalid: admitted.flatMap((a) => a.invalid),
          fields,
        },
        nowMs,
      ),
    );
  } catch (err) {
    deps.log.warn({ err: errorMessage(err), firstSeq: head.first.toString() }, "batch not stored");
    return {
      ok: false,
      code: status.UNAVAILABLE,
      details: `database unavailable, batch ${head.first}-${tail.last} not stored; resend`,
      reason: "database_unavailable",
    };
  }
  if (outcome.kind === "refused")
    return { ok: false, code: status.PERMISSION_DENIED, details: outcome.reason, reason: "disabled" };

  const m = deps.metrics;
  const { stored, duplicates, quarantined } = outcome;
  let results: readonly CommittedResult[] | null = null;
  const committed: CommittedBatch = {
    identity: id,
    first: head.first,
    last: tail.last,
    results: () => (results ??= deps.reader.committed(stored)),
    storedCount: stored.length,
    duplicates,
    quarantined,
    receivedAtMs: nowMs,
  };
  const replies: AggregatorMessage[] = [];
  for (const reply of held) {
    if ("send" in reply) {
      replies.push(reply.send);
      continue;
    }
    const a = reply.ack;
    const quarantined = outcome.quarantined.filter((q) => q.seq >= a.first && q.seq <= a.last);
    if (quarantined.length > 0) {
      deps.warn(
        { status: "INVALID_ARGUMENT", quarantined: quarantined.length, first: quarantined[0]?.reason },
        "results quarantined",
      );
      m.rejects.inc({ code: "INVALID_ARGUMENT" });
      replies.push(quarantineReject(quarantined, a.count));
    }
    replies.push(ack(a.last));
    m.batchLatency.observe((performance.now() - a.receivedAt) / 1000);
  }
  return { ok: true, replies, committed };
}
