// COPY text lines for `results` (PostgreSQL text format: tab between
// columns, \N for NULL, backslash escapes inside values; columns in
// copy-batch.ts COPY_COLUMNS order). Only validated values reach here:
// operation names and failure classes are known identifiers, numbers are
// finite, and names carry no tab, newline or backslash, so only the free-text
// failure message needs escaping. The operations JSON keeps the shape the
// rest of smbfleet reads (0002_results.sql):
//   [{"operation":"write","samples_ms":[0.9,1.1],"failures":0},…]
import type { ValidOperation, ValidResult } from "./validate.ts";

const SPECIAL = /[\\\n\r\t]/;
const SPECIAL_ALL = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** A text value in COPY's text format; null becomes \N. */
export function copyText(value: string | null): string {
  if (value === null) return "\\N";
  return SPECIAL.test(value) ? value.replace(SPECIAL_ALL, (c) => ESCAPES[c]!) : value;
}

/** One operation as its JSON object. */
export function operationJson(operation: string, samplesMs: readonly number[], failures: number): string {
  return `{"operation":"${operation}","samples_ms":[${samplesMs.join(",")}],"failures":${failures}}`;
}

function operationsJson(ops: readonly ValidOperation[]): string {
  let out = "";
  for (const o of ops)
    out += `${out === "" ? "" : ","}${operationJson(o.operation, o.samplesMs, o.failures)}`;
  return `[${out}]`;
}

/**
 * The columns of one result from seq to late, each followed by a tab; the
 * batch appends target_id and its constant tail (batchTail).
 */
export function resultFields(seq: bigint, r: ValidResult, late: boolean): string {
  return (
    `${seq}\t${new Date(r.startedAtMs).toISOString()}\t${r.durationMs}\t${r.healthy ? "t" : "f"}\t` +
    `${r.failureClass ?? "\\N"}\t${copyText(r.failureMessage)}\t${operationsJson(r.operations)}\t` +
    `{${r.aboveThreshold.join(",")}}\t${late ? "t" : "f"}\t`
  );
}

/** What follows target_id on every line of a batch: site, agent_id, received_at. */
export function batchTail(site: string, agent: string, receivedAt: Date): string {
  return `\t${copyText(site)}\t${copyText(agent)}\t${receivedAt.toISOString()}\n`;
}
