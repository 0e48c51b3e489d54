// COPY text lines for `results` (PostgreSQL text format: tab between
// columns, \N for NULL, backslash escapes inside values; columns in
// copy-batch.ts COPY_COLUMNS order). Only validated values reach here:
// operation names and failure classes are known identifiers, numbers are
// finite, and names carry no tab, newline or backslash, so only the free-text
// failure message needs escaping. The operations JSON keeps the shape the
// rest of smbfleet reads (0002_results.sql):
//   [{"operation":"write","samples_ms":[0.9,1.1],"failures":0},…]
import type { ValidOperation, ValidResult } from "../decode/validate.ts";

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
    `${seq}\t${isoTime(r.startedAtMs)}\t${r.durationMs}\t${r.healthy ? "t" : "f"}\t` +
    `${r.failureClass ?? "\\N"}\t${copyText(r.failureMessage)}\t${operationsJson(r.operations)}\t` +
    `{${r.aboveThreshold.join(",")}}\t${late ? "t" : "f"}\t`
  );
}

/** What follows target_id on every line of a batch: site, agent_id, received_at. */
export function batchTail(site: string, agent: string, receivedAt: Date): string {
  return `\t${copyText(site)}\t${copyText(agent)}\t${receivedAt.toISOString()}\n`;
}

const DAY_MS = 86_400_000;
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));
let isoDay = NaN;
let isoDayPrefix = "";

/**
 * new Date(ms).toISOString() for 0 ≤ ms < year 10000, about 7× faster: the
 * date part is cached by day (results of a batch share a day or two), the
 * time of day is table lookups. It was the largest single cost of writing a
 * row. copy-rows.test.ts compares it with toISOString.
 */
export function isoTime(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  if (day !== isoDay) {
    isoDay = day;
    isoDayPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
  }
  let rest = ms - day * DAY_MS;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const sec = Math.floor(rest / 1000);
  return `${isoDayPrefix}${TWO_DIGITS[h]}:${TWO_DIGITS[m]}:${TWO_DIGITS[sec]}.${THREE_DIGITS[rest - sec * 1000]}Z`;
}

/**
 * Node's Buffer#latin1Write: what buffer.write(s, offset, "latin1") ends in,
 * without its argument handling, which cost more than the copy for the
 * short strings written per row.
 */
type Latin1Writable = Buffer & { latin1Write(s: string, offset: number): number };

/**
 * COPY text written as bytes into one growing buffer: a batch's lines are
 * bytes from the start, so no per-row string (and no rope of them) lives
 * while the batch waits for its commit. Strings given to ascii() must be
 * ASCII (identifiers, numbers, timestamps).
 */
export class CopyWriter {
  buffer: Buffer = Buffer.allocUnsafe(64 * 1024);
  length = 0;

  reset(): void {
    this.length = 0;
  }

  #room(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + n));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  ascii(s: string): void {
    this.#room(s.length);
    this.length += (this.buffer as Latin1Writable).latin1Write(s, this.length);
  }

  /** Any text, UTF-8 encoded, already escaped for COPY. */
  text(s: string): void {
    this.#room(s.length * 3);
    this.length += this.buffer.write(s, this.length, "utf8");
  }
}
