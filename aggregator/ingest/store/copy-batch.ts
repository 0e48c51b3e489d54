// A batch of valid results stored by COPY, in ONE simple Query message:
//
//   CALL smbfleet_batch_begin('agent', first, last); COPY results (…) FROM STDIN
//
// PostgreSQL runs the statements of one Query message as one implicit
// transaction and commits it before it reports the last statement complete,
// so there is no BEGIN, no COMMIT and no client-side ROLLBACK, and a lost
// connection rolls back on the server. That avoids both postgres.js 3.4.9
// bugs that made the aggregator give up COPY (docs/benchmarks.md):
//
// * #1208: a connection that dies inside sql.begin() (or any reserved
//   connection) gets its next query written to a null socket, an uncatchable
//   TypeError that kills the process. Here every statement goes through the
//   pool, which never hands out a dead connection.
// * #1173: postgres.js resolves the query with the writable at CopyInResponse
//   and drops whatever comes after CopyDone: an error, or the end of the
//   transaction. It does call the query's resolve (with the result) or reject
//   (with the error) again at ReadyForQuery, or reject when the connection is
//   lost, and a settled promise ignores both, so this module replaces those
//   two functions on the query once it has the writable: ReadyForQuery
//   without error, after the commit, is the only thing taken as success.
// * The writable's end callback is never trusted: after a failure it stays
//   armed on the connection and fires on a later query's CommandComplete.
//   When it fires, the writable auto-destroys, and postgres.js's destroy
//   writes CopyFail to the socket and clears the connection's current COPY
//   stream, which then kills that later query's COPY. So the writable's
//   destroy is replaced by one that only ends the stream: postgres.js
//   already clears its own state on every path that destroys it with an
//   error, and a CopyFail is never needed here (the data goes in one write).
//
// test/ingest/copy-batch.test.ts pins each path: commit, refusal, a COPY that
// fails after CopyDone, a backend terminated mid-COPY, and the outage test
// (test/ingest/db-outage.test.ts) runs the whole stream through it.
import type { Writable } from "node:stream";
import { SmbfleetError } from "../../../shared/errors.ts";
import type { Db } from "../../db/connect.ts";
import { STATEMENT_TIMEOUT_MS } from "../../db/connect.ts";

/** The column order of a COPY line (aggregator/ingest/store/copy-rows.ts writes them). */
export const COPY_COLUMNS =
  "seq, started_at, duration_ms, healthy, failure_class, failure_message, operations, " +
  "above_threshold, late, target_id, site, agent_id, received_at";

/**
 * How long after the data is sent an outcome may take before the batch is
 * given up (and not acked; the agent resends and the high-water mark drops
 * what had landed). PostgreSQL's statement_timeout ends a stuck statement
 * first; this only covers a connection that neither answers nor closes.
 */
export const COPY_OUTCOME_TIMEOUT_MS = STATEMENT_TIMEOUT_MS + 10_000;

export interface CopyBatchInput {
  site: string;
  agent: string;
  /** The batch's sequence range: every row and quarantined result is in it, none at or below the mark. */
  first: bigint;
  last: bigint;
  receivedAt: Date;
  /** COPY text lines in COPY_COLUMNS order (copy-rows.ts), and how many. */
  text: string | Buffer;
  rowCount: number;
  /** Results refused by validation, stored in quarantined_results in the same transaction. */
  quarantine: readonly { seq: bigint; reason: string; raw: Uint8Array }[];
}

export type CopyOutcome =
  | { kind: "committed" }
  /** smbfleet_batch_begin refused: nothing was written. */
  | { kind: "refused"; why: "disabled" | "below-high-water"; reason: string };

/** SQLSTATEs raised by smbfleet_batch_begin (migration 0004). */
const REFUSALS: Record<string, "disabled" | "below-high-water"> = {
  SFB01: "disabled",
  SFB02: "below-high-water",
};

/** The internals of a postgres.js query and COPY writable that #1173 makes us use. */
interface QueryInternals {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}
interface WritableInternals {
  _destroy: (err: Error | null, callback: (err?: Error | null) => void) => void;
}

/**
 * Site and agent names are checked where they enter (shared/tls/names.ts);
 * this refuses anything else outright rather than quote it, since these
 * statements carry literals (a simple Query has no parameters).
 */
function nameLiteral(value: string): string {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(value)) throw new Error(`not a fleet name: ${JSON.stringify(value)}`);
  return `'${value}'`;
}

/** Free text and bytes as base64 literals: nothing in them can reach the SQL parser. */
function base64(bytes: Uint8Array): string {
  return `decode('${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")}', 'base64')`;
}

function quarantineCall(b: CopyBatchInput): string {
  const q = b.quarantine;
  return (
    `CALL smbfleet_quarantine(${nameLiteral(b.site)}, ${nameLiteral(b.agent)}, '${b.receivedAt.toISOString()}', ` +
    `ARRAY[${q.map((r) => r.seq).join(",")}]::bigint[], ` +
    `ARRAY[${q.map((r) => `convert_from(${base64(Buffer.from(r.reason, "utf8"))}, 'UTF8')`).join(",")}]::text[], ` +
    `ARRAY[${q.map((r) => base64(r.raw)).join(",")}]::bytea[]); `
  );
}

/**
 * Stores one batch atomically: advances the agent's high-water mark to
 * `last`, quarantines the refused results and COPYs the rows. Resolves once
 * committed or refused (nothing written); rejects when it failed or its
 * outcome is unknown, and then nothing may be acked.
 */
export async function copyBatch(
  sql: Db,
  b: CopyBatchInput,
  timeoutMs = COPY_OUTCOME_TIMEOUT_MS,
): Promise<CopyOutcome> {
  const statement =
    `CALL smbfleet_batch_begin(${nameLiteral(b.agent)}, ${b.first}, ${b.last}); ` +
    (b.quarantine.length > 0 ? quarantineCall(b) : "") +
    `COPY results (${COPY_COLUMNS}) FROM STDIN`;
  const query = sql.unsafe(statement);
  let writable: Writable;
  try {
    writable = await query.writable();
  } catch (err) {
    // Failed before COPY began (refused, or no connection): nothing was written.
    const why = REFUSALS[String((err as { code?: unknown }).code)];
    if (why !== undefined) return { kind: "refused", why, reason: (err as Error).message };
    throw err;
  }
  (writable as unknown as WritableInternals)._destroy = (err, callback) => callback(err);
  // From here on only the hooks below report the outcome (see the top of the file).
  const internals = query as unknown as QueryInternals;
  let timer: NodeJS.Timeout | undefined;
  const outcome = new Promise<unknown>((resolve, reject) => {
    internals.resolve = resolve;
    internals.reject = reject;
    timer = setTimeout(
      () => reject(new SmbfleetError("DB_UNAVAILABLE", `no outcome for COPY within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  // If anything below throws before `await outcome` (writable.end() on a
  // connection that just died), the hooked reject still fires later; without
  // a handler that rejection would be unhandled and end the process
  // (test/db/backend-termination.test.ts met it under load).
  outcome.catch(() => {});
  // postgres.js destroys the writable with the connection's error; the hooked
  // reject carries the same error. An 'error' without a listener would be thrown.
  writable.on("error", () => {});
  try {
    writable.end(b.text);
    const result = (await outcome) as { command?: unknown; count?: unknown };
    if (result.command !== "COPY" || result.count !== b.rowCount) {
      // Not what this module expects of the protocol exchange: refusing the
      // ack is the safe answer (a resend is recognised by the high-water mark).
      throw new Error(
        `COPY of seqs ${b.first}-${b.last}: PostgreSQL reported ${String(result.command)} ${String(result.count)}, expected COPY ${b.rowCount}`,
      );
    }
    return { kind: "committed" };
  } finally {
    clearTimeout(timer);
  }
}
