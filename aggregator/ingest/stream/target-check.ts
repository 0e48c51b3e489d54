// The agent's target quota (target-quota.ts) applied to what it sends: the
// targets Hello lists, and the rows of a read batch.
import type { Hello } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import type { ReadBatch } from "../decode/batch-reader.ts";
import { validateTarget, type ValidTarget } from "../decode/validate.ts";
import type { Identity } from "../store/agents.ts";
import { TargetCache } from "../store/targets.ts";
import type { Take } from "./rate-limit.ts";
import type { TargetQuota } from "./target-quota.ts";

/**
 * The targets Hello lists that are usable and within the quota; unusable
 * ones are told to `unusable` (their reason), the others only counted.
 */
export function helloTargets(
  hello: Hello,
  id: Identity,
  quota: TargetQuota,
  unusable: (reason: string) => void,
): { announced: ValidTarget[]; overCap: number; overRate: number } {
  const announced: ValidTarget[] = [];
  let overCap = 0;
  let overRate = 0;
  hello.targets.forEach((t, i) => {
    const v = validateTarget(t, `targets[${i}]`);
    if (!v.ok) return unusable(v.reason);
    const q = quota.admit(id.agent, TargetCache.key(id.site, v.target), true);
    if (q.ok) announced.push(v.target);
    else if (q.limit === "max_targets_per_agent") overCap++;
    else overRate++;
  });
  return { announced, overCap, overRate };
}

/**
 * The quota over a read batch: rows for targets past the agent's cap become
 * quarantined results with the reason (`read` is changed in place); when
 * new targets come faster than the rate, `refused` says when to resend the
 * batch. `admitted` remembers target objects already let in on this stream
 * (the reader shares one object per target), so a steady stream asks nothing.
 */
export function batchTargets(
  read: ReadBatch & { ok: true },
  firstSeq: bigint,
  id: Identity,
  quota: TargetQuota,
  admitted: WeakSet<ValidTarget>,
): { refused: Take | null; overCap: number } {
  let refused: Take | null = null;
  let overCap = 0;
  for (let i = 0; i < read.rows.length; i++) {
    const row = read.rows[i]!;
    if (admitted.has(row.target)) continue;
    const q = quota.admit(id.agent, TargetCache.key(id.site, row.target));
    if (q.ok) {
      admitted.add(row.target);
    } else if (q.limit === "new_targets_per_minute") {
      refused ??= { ok: false, retryAfterMs: q.retryAfterMs, what: q.what };
    } else {
      overCap++;
      const reason = `results[${row.seq - firstSeq}].target: ${q.reason}`;
      read.invalid.push({ seq: row.seq, reason, raw: row.bytes.subarray(row.start, row.end) });
      read.rows.splice(i--, 1);
    }
  }
  // Quarantined results are stored in seq order (store.ts).
  if (overCap > 0) read.invalid.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  return { refused, overCap };
}
