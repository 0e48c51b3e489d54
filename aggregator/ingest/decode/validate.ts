// Per-result validation of what an agent sent. A result that fails is not
// stored as a result: it is quarantined with its bytes and the reason, and
// the agent hears a Reject (INVALID_ARGUMENT) whose message names the field
// the way the wire schema spells it, e.g.
//   results[3].operations[0].operation: unknown operation "foo"
import type { Result, Target } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import { FIELD_LIMITS } from "../../../shared/wire/field-limits.ts";
import {
  isFailureClass,
  isOperation,
  type FailureClass,
  type Operation,
  type TargetRef,
} from "../../../shared/result.ts";

/** A target that passed validation: the shape the agent sent (shared/result.ts). */
export type ValidTarget = TargetRef;

export interface ValidOperation {
  operation: Operation;
  samplesMs: number[];
  failures: number;
}

export interface ValidResult {
  target: ValidTarget;
  startedAtMs: number;
  durationMs: number;
  healthy: boolean;
  failureClass: FailureClass | null;
  failureMessage: string | null;
  operations: ValidOperation[];
  aboveThreshold: Operation[];
}

export type Checked = { ok: true; result: ValidResult } | { ok: false; reason: string };

/** Ends a failure message that was cut (within maxFailureMessageBytes). */
export const CUT_MARK = "… [cut]";
const CUT_MARK_BYTES = Buffer.byteLength(CUT_MARK);

/** Values quoted in a reason are shortened to this many characters: a reason is stored and logged. */
const MAX_QUOTED = 64;

function quoted(value: string): string {
  return JSON.stringify(value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value);
}

/** value cut to at most maxBytes UTF-8 bytes, CUT_MARK included, on a character boundary. */
export function cutText(value: string, maxBytes: number): string {
  if (value.length * 3 <= maxBytes || Buffer.byteLength(value) <= maxBytes) return value;
  const bytes = Buffer.from(value, "utf8");
  let end = maxBytes - CUT_MARK_BYTES;
  // bytes[end] is the first byte left out: never split a character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.toString("utf8", 0, end) + CUT_MARK;
}

export interface ValidationLimits {
  /** A result stamped further ahead of the aggregator's clock than this is refused. */
  maxFutureSkewMs: number;
}

class Invalid extends Error {}

function fail(path: string, problem: string): never {
  throw new Invalid(`${path}: ${problem}`);
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000; one such character would make
 * the whole batch's COPY fail, and the agent would resend it forever.
 */
function text(path: string, value: string, required: boolean, maxBytes = Infinity): string {
  if (required && value.length === 0) fail(path, "required");
  // Each UTF-16 unit is at least one UTF-8 byte and at most three: encode only when that does not decide.
  if (value.length > maxBytes || (value.length * 3 > maxBytes && Buffer.byteLength(value) > maxBytes)) {
    fail(path, `too long: ${Buffer.byteLength(value)} bytes (limit ${maxBytes})`);
  }
  if (value.includes("\u0000")) fail(path, "contains a NUL character");
  return value;
}

function latency(path: string, value: number): number {
  if (!Number.isFinite(value)) fail(path, `not a finite number (${value})`);
  if (value < 0) fail(path, `negative latency ${value}`);
  return value;
}

function operationName(path: string, value: string): Operation {
  if (!isOperation(value)) fail(path, `unknown operation ${quoted(value)}`);
  return value;
}

function checkTarget(at: string, t: Target | undefined): ValidTarget {
  if (t === undefined) fail(at, "required");
  const L = FIELD_LIMITS;
  const address = text(`${at}.address`, t.address, true, L.maxNameBytes);
  const share = text(`${at}.share`, t.share, true, L.maxNameBytes);
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) {
    fail(`${at}.port`, `must be 1-65535, got ${t.port}`);
  }
  const entries = Object.entries(t.labels);
  if (entries.length > L.maxLabels) fail(`${at}.labels`, `${entries.length} labels (limit ${L.maxLabels})`);
  const labels: Record<string, string> = {};
  for (const [k, v] of entries) {
    const key = text(`${at}.labels`, k, true, L.maxLabelKeyBytes);
    labels[key] = text(`${at}.labels[${JSON.stringify(k)}]`, v, false, L.maxLabelValueBytes);
  }
  const name = text(`${at}.name`, t.name, false, L.maxNameBytes);
  return {
    // smbprobe allows an empty name; the agent's config loader defaults it the same way.
    name: name || `${address}/${share}`,
    address,
    port: t.port,
    domain: text(`${at}.domain`, t.domain, false, L.maxNameBytes),
    share,
    basedir: text(`${at}.basedir`, t.basedir, false, L.maxNameBytes),
    labels,
  };
}

/** A target as listed in Hello (`path` is e.g. "targets[2]"): the target, or why it is unusable. */
export function validateTarget(
  t: Target,
  path: string,
): { ok: true; target: ValidTarget } | { ok: false; reason: string } {
  try {
    return { ok: true, target: checkTarget(path, t) };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: err.message };
    throw err;
  }
}

/** Checks result `index` of a batch against the aggregator's clock `nowMs`. */
export function validateResult(r: Result, index: number, nowMs: number, limits: ValidationLimits): Checked {
  const at = `results[${index}]`;
  try {
    const target = checkTarget(`${at}.target`, r.target);

    const startedAtMs = Number(r.startedAtUnixMs);
    if (startedAtMs <= 0)
      fail(`${at}.started_at_unix_ms`, `must be a positive Unix time, got ${startedAtMs}`);
    if (startedAtMs - nowMs > limits.maxFutureSkewMs) {
      fail(
        `${at}.started_at_unix_ms`,
        `${new Date(startedAtMs).toISOString()} is ${Math.round((startedAtMs - nowMs) / 1000)} s in the future` +
          ` (limit ${Math.round(limits.maxFutureSkewMs / 1000)} s)`,
      );
    }
    const durationMs = latency(`${at}.duration_ms`, r.durationMs);

    const seen = new Set<string>();
    const operations = r.operations.map((o, j): ValidOperation => {
      const path = `${at}.operations[${j}]`;
      const operation = operationName(`${path}.operation`, o.operation);
      if (seen.has(operation)) fail(`${path}.operation`, `duplicate operation ${JSON.stringify(operation)}`);
      seen.add(operation);
      // failures is a uint32 on the wire: it cannot be negative, only absurd.
      const samplesMs = o.samplesMs.map((v, k) => latency(`${path}.samples_ms[${k}]`, v));
      return { operation, samplesMs, failures: o.failures };
    });

    let failureClass: FailureClass | null = null;
    if (r.failureClass !== "") {
      if (!isFailureClass(r.failureClass)) {
        fail(`${at}.failure_class`, `unknown failure class ${quoted(r.failureClass)}`);
      }
      failureClass = r.failureClass;
    }
    const failureMessage =
      cutText(text(`${at}.failure_message`, r.failureMessage, false), FIELD_LIMITS.maxFailureMessageBytes) ||
      null;
    const aboveThreshold = r.aboveThreshold.map((op, k) => operationName(`${at}.above_threshold[${k}]`, op));

    return {
      ok: true,
      result: {
        target,
        startedAtMs,
        durationMs,
        healthy: r.healthy,
        failureClass,
        failureMessage,
        operations,
        aboveThreshold,
      },
    };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: err.message };
    throw err;
  }
}
