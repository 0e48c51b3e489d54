// Per-result validation of what an agent sent. A result that fails is not
// stored as a result: it is quarantined with its bytes and the reason, and
// the agent hears a Reject (INVALID_ARGUMENT) whose message names the field
// the way the wire schema spells it, e.g.
//   results[3].operations[0].operation: unknown operation "foo"
import type { Result, Target } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import { isFailureClass, isOperation, type FailureClass, type Operation } from "../../../shared/result.ts";

export interface ValidTarget {
  name: string;
  address: string;
  port: number;
  domain: string;
  share: string;
  basedir: string;
  labels: Record<string, string>;
}

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
function text(path: string, value: string, required: boolean): string {
  if (required && value.length === 0) fail(path, "required");
  if (value.includes("\u0000")) fail(path, "contains a NUL character");
  return value;
}

function latency(path: string, value: number): number {
  if (!Number.isFinite(value)) fail(path, `not a finite number (${value})`);
  if (value < 0) fail(path, `negative latency ${value}`);
  return value;
}

function operationName(path: string, value: string): Operation {
  if (!isOperation(value)) fail(path, `unknown operation ${JSON.stringify(value)}`);
  return value;
}

function checkTarget(at: string, t: Target | undefined): ValidTarget {
  if (t === undefined) fail(at, "required");
  const address = text(`${at}.address`, t.address, true);
  const share = text(`${at}.share`, t.share, true);
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) {
    fail(`${at}.port`, `must be 1-65535, got ${t.port}`);
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(t.labels)) {
    labels[text(`${at}.labels`, k, true)] = text(`${at}.labels[${JSON.stringify(k)}]`, v, false);
  }
  return {
    // smbprobe allows an empty name; the agent's config loader defaults it the same way.
    name: text(`${at}.name`, t.name, false) || `${address}/${share}`,
    address,
    port: t.port,
    domain: text(`${at}.domain`, t.domain, false),
    share,
    basedir: text(`${at}.basedir`, t.basedir, false),
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
        fail(`${at}.failure_class`, `unknown failure class ${JSON.stringify(r.failureClass)}`);
      }
      failureClass = r.failureClass;
    }
    const failureMessage = text(`${at}.failure_message`, r.failureMessage, false) || null;
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
