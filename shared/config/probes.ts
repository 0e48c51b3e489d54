// One [[probes]] block: smbprobe's keys (name, address, domain, share,
// username, password, remote_basedir, interval) plus smbfleet's own.
import { FIELD_LIMITS } from "../wire/field-limits.ts";
import { OPERATIONS, isOperation, targetKey, type Operation } from "../result.ts";
import { Secret } from "../secret.ts";
import {
  AUTH_METHODS,
  PASSWORD_FALLBACK_ENV,
  PROBE_DEFAULTS,
  PROTOCOL_FLOORS,
  RESERVED_LABELS,
} from "./defaults.ts";
import { joinKey } from "./key-path.ts";
import type { TableReader } from "./reader.ts";
import type { SecretResolver } from "./secrets.ts";
import type { ProbeTarget } from "./types.ts";
import { hasControlChars } from "./values.ts";

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export interface ProbeContext {
  secrets: SecretResolver;
  env: NodeJS.ProcessEnv;
}

/** Reads one probe; undefined when it has errors (all of them reported). */
export function readProbe(r: TableReader, ctx: ProbeContext): ProbeTarget | undefined {
  const before = r.sink.errorCount;
  const address = smbText(
    r,
    "address",
    { required: true, nonEmpty: true },
    /[\s/\\]/,
    "a host name or IP address",
  );
  const share = smbText(
    r,
    "share",
    { required: true, nonEmpty: true },
    /[/\\]/,
    'a share name without "/" or "\\"',
  );
  const username = smbText(r, "username", { required: true, nonEmpty: true });
  const domain = smbText(r, "domain") ?? PROBE_DEFAULTS.domain;
  const remoteBasedir = smbText(r, "remote_basedir", { nonEmpty: true }) ?? PROBE_DEFAULTS.remoteBasedir;
  const name = r.string("name");
  if (name !== undefined) withinBytes(r, "name", name, FIELD_LIMITS.maxNameBytes);
  const port = r.integer("port", { min: 1, max: 65535 }) ?? PROBE_DEFAULTS.port;
  const auth = (r.string("auth", { oneOf: AUTH_METHODS }) ?? PROBE_DEFAULTS.auth) as ProbeTarget["auth"];
  const password = readPassword(r, ctx, auth);

  const interval = r.number("interval", { min: PROBE_DEFAULTS.minIntervalSeconds });
  const intervalSeconds = interval ?? PROBE_DEFAULTS.intervalSeconds;
  const timeout = r.number("timeout", { above: 0 });
  if (timeout !== undefined && timeout > intervalSeconds) {
    r.warn(
      "timeout",
      `${timeout} s is longer than the interval (${intervalSeconds} s): a run still going when the next is due delays it`,
    );
  }
  const timeoutSeconds = timeout ?? Math.min(intervalSeconds, PROBE_DEFAULTS.maxDefaultTimeoutSeconds);
  const opTimeout = r.number("operation_timeout", { above: 0 });
  if (opTimeout !== undefined && opTimeout > timeoutSeconds) {
    r.warn(
      "operation_timeout",
      `${opTimeout} s is longer than the run timeout (${timeoutSeconds} s), so it never fires`,
    );
  }
  const operationTimeoutSeconds =
    opTimeout ?? Math.min(PROBE_DEFAULTS.operationTimeoutSeconds, timeoutSeconds);

  const latencyThresholdsMs = readThresholds(r);
  const protocol = readProtocol(r);
  const labels = readLabels(r);
  const fileCount =
    r.integer("files", { min: 1, max: PROBE_DEFAULTS.maxFileCount }) ?? PROBE_DEFAULTS.fileCount;
  const fileSizeBytes =
    r.integer("file_size", { min: 1, max: PROBE_DEFAULTS.maxFileSizeBytes }) ?? PROBE_DEFAULTS.fileSizeBytes;
  const rename = r.boolean("rename") ?? false;
  const mkdir = r.boolean("mkdir") ?? false;
  r.finish();

  if (
    (name === undefined || name === "") &&
    address !== undefined &&
    share !== undefined &&
    Buffer.byteLength(`${address}/${share}`) > FIELD_LIMITS.maxNameBytes
  ) {
    r.error(
      "name",
      `required here: the default name, address/share, is over ${FIELD_LIMITS.maxNameBytes} bytes (the aggregator refuses longer)`,
    );
  }
  if (r.sink.errorCount > before || address === undefined || share === undefined || username === undefined) {
    return undefined;
  }
  return {
    name: name === undefined || name === "" ? `${address}/${share}` : name,
    address,
    port,
    domain,
    share,
    username,
    password: password ?? new Secret(""),
    remoteBasedir,
    intervalSeconds,
    timeoutSeconds,
    operationTimeoutSeconds,
    latencyThresholdsMs,
    auth,
    protocol,
    labels,
    fileCount,
    fileSizeBytes,
    rename,
    mkdir,
    line: r.sink.lineOf(r.path),
  };
}

/**
 * Reports targets that repeat an earlier one (same address, domain, share and
 * basedir), naming both. Works on the raw values, so a duplicate is found even
 * in a block that has other errors.
 */
export function checkDuplicateTargets(blocks: readonly TableReader[]): void {
  const seen = new Map<string, TableReader>();
  for (const block of blocks) {
    const text = (name: string, fallback?: string): string | undefined => {
      const v = block.values[name] ?? fallback;
      return typeof v === "string" ? v : undefined;
    };
    const address = text("address");
    const share = text("share");
    const domain = text("domain", PROBE_DEFAULTS.domain);
    const basedir = text("remote_basedir", PROBE_DEFAULTS.remoteBasedir);
    if (address === undefined || share === undefined || domain === undefined || basedir === undefined)
      continue;
    const key = targetKey({ address, domain, share, basedir });
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, block);
      continue;
    }
    block.sink.error(
      block.path,
      `duplicate target: same address, domain, share and remote_basedir as ${first.path} (line ${block.sink.lineOf(first.path)})`,
    );
  }
}

/**
 * Strings that reach smbclient's command line or its stdin: a control
 * character would end the command early and start another.
 */
function smbText(
  r: TableReader,
  name: string,
  opts: { required?: boolean; nonEmpty?: boolean } = {},
  forbidden?: RegExp,
  what?: string,
): string | undefined {
  const value = r.string(name, opts);
  if (value === undefined) return undefined;
  if (!withinBytes(r, name, value, FIELD_LIMITS.maxNameBytes)) return undefined;
  if (hasControlChars(value)) {
    r.error(name, "must not contain control characters (line breaks, tabs)");
    return undefined;
  }
  if (forbidden !== undefined && forbidden.test(value)) {
    r.error(name, `must be ${what ?? "valid"}, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return value;
}

function readPassword(r: TableReader, ctx: ProbeContext, auth: ProbeTarget["auth"]): Secret | undefined {
  const raw = r.string("password", { secret: true });
  if (raw === undefined && r.has("password")) return undefined; // wrong type, reported
  let secret: Secret | undefined = new Secret("");
  if (raw !== undefined && raw !== "") {
    secret = ctx.secrets.resolve(r.key("password"), raw);
    if (secret === undefined) return undefined; // unresolvable, reported
  }
  // smbprobe: an empty or absent password falls back to SMB_MONITOR_PROBE_PASSWORD.
  const fallback = ctx.env[PASSWORD_FALLBACK_ENV];
  if (secret.isEmpty && fallback !== undefined) secret = new Secret(fallback);
  if (secret.isEmpty && auth === "ntlm") {
    r.error("password", `required (or set ${PASSWORD_FALLBACK_ENV}, or auth = "kerberos")`);
    return undefined;
  }
  // The password reaches smbclient through a line-based authentication file.
  if (/[\r\n]/.test(secret.reveal())) {
    r.error("password", "must not contain a line break");
    return undefined;
  }
  return secret;
}

function readThresholds(r: TableReader): Record<Operation, number> {
  const ms = Object.fromEntries(
    Object.entries(PROBE_DEFAULTS.latencyThresholdsSeconds).map(([op, s]) => [op, s * 1000]),
  ) as Record<Operation, number>;
  const t = r.table("latency_thresholds");
  if (t === undefined) return ms;
  for (const op of Object.keys(t.values)) {
    if (!isOperation(op)) {
      t.raw(op);
      t.error(op, `unknown operation; expected one of ${OPERATIONS.join(", ")}`);
      continue;
    }
    const seconds = t.number(op, { above: 0 });
    if (seconds !== undefined) ms[op] = seconds * 1000;
  }
  t.finish();
  return ms;
}

function readProtocol(r: TableReader): string | null {
  const value = r.string("protocol");
  if (value === undefined) return null;
  const upper = value.toUpperCase();
  if ((PROTOCOL_FLOORS as readonly string[]).includes(upper)) return upper;
  r.error("protocol", `must be one of ${PROTOCOL_FLOORS.join(", ")}, got ${JSON.stringify(value)}`);
  return null;
}

function readLabels(r: TableReader): Record<string, string> {
  const labels: Record<string, string> = {};
  const entries = r.stringMap("labels");
  if (entries === undefined) return labels;
  const path = r.key("labels");
  const reserved = RESERVED_LABELS as readonly string[];
  if (entries.length > FIELD_LIMITS.maxLabels) {
    r.error(
      "labels",
      `at most ${FIELD_LIMITS.maxLabels} labels (the aggregator refuses more), got ${entries.length}`,
    );
    return labels;
  }
  for (const [name, value] of entries) {
    const key = joinKey(path, name);
    if (Buffer.byteLength(name) > FIELD_LIMITS.maxLabelKeyBytes) {
      r.sink.error(
        key,
        `label names are at most ${FIELD_LIMITS.maxLabelKeyBytes} bytes (the aggregator refuses longer)`,
      );
    } else if (Buffer.byteLength(value) > FIELD_LIMITS.maxLabelValueBytes) {
      r.sink.error(
        key,
        `label values are at most ${FIELD_LIMITS.maxLabelValueBytes} bytes (the aggregator refuses longer), got ${Buffer.byteLength(value)}`,
      );
    } else if (!LABEL_NAME.test(name) || name.startsWith("__")) {
      r.sink.error(key, "label names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __");
    } else if (reserved.includes(name)) {
      r.sink.error(key, `clashes with a label smbfleet sets itself (${reserved.join(", ")})`);
    } else {
      labels[name] = value;
    }
  }
  return labels;
}

/**
 * Whether value fits the aggregator's cap on the field (shared/wire/field-limits.ts);
 * over it, every result of the probe would be quarantined at HQ, so it is
 * a config error here.
 */
function withinBytes(r: TableReader, name: string, value: string, max: number): boolean {
  const bytes = Buffer.byteLength(value);
  if (bytes <= max) return true;
  r.error(name, `must be at most ${max} bytes (the aggregator refuses longer), got ${bytes}`);
  return false;
}
