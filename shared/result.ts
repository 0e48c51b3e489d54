// The probe result: what one run against one target produced. Every role
// speaks this shape; the wire form is smbfleet.v1.Result (shared/gen).

/** smbprobe's operation names, the values of its `operation` metric label. */
export const SMBPROBE_OPERATIONS = ["login", "write", "ls_dir", "read", "unlink"] as const;

/** Every operation smbfleet can time. The last four are smbfleet's own. */
export const OPERATIONS = [...SMBPROBE_OPERATIONS, "integrity", "rename", "mkdir", "rmdir"] as const;
export type Operation = (typeof OPERATIONS)[number];

export function isOperation(value: string): value is Operation {
  return (OPERATIONS as readonly string[]).includes(value);
}

/**
 * What went wrong, by what an operator must do about it. One table maps
 * smbclient output to these (agent/checks/smb/classify.ts).
 */
export const FAILURE_CLASSES = [
  "auth", // wrong user or password, expired account
  "share_not_found", // the share does not exist on that server
  "access_denied", // logged in, but not allowed to do the operation
  "unreachable", // connection refused, no route, name not resolved
  "timeout", // the server did not answer in time; the process was killed
  "protocol", // negotiation failed (protocol floor, signing)
  "not_found", // a file or directory the probe expected is missing
  "disk_full", // the share is out of space or quota
  "integrity", // bytes read back differ from bytes written
  "internal", // smbclient could not be started, or crashed
  "unknown", // anything the table does not know yet; the raw message is kept
] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

export function isFailureClass(value: string): value is FailureClass {
  return (FAILURE_CLASSES as readonly string[]).includes(value);
}

/** A target's identity is (address, domain, share, basedir); name and labels describe it. */
export interface TargetRef {
  name: string;
  address: string;
  port: number;
  domain: string;
  share: string;
  basedir: string;
  labels: Readonly<Record<string, string>>;
}

export function targetKey(t: Pick<TargetRef, "address" | "domain" | "share" | "basedir">): string {
  return [t.address, t.domain.toLowerCase(), t.share.toLowerCase(), t.basedir].join("|");
}

export interface OperationStats {
  operation: Operation;
  /** One sample per successful attempt, milliseconds. */
  samplesMs: number[];
  failures: number;
}

export interface ProbeResult {
  target: TargetRef;
  /** Wall-clock start of the run, Unix epoch milliseconds (agent clock). */
  startedAtMs: number;
  durationMs: number;
  operations: OperationStats[];
  /** null when the run had no failure. */
  failureClass: FailureClass | null;
  /** The raw message behind failureClass, as smbclient printed it. */
  failureMessage: string | null;
  /** smbprobe's rule: unhealthy if any operation failed or any median is above its threshold. */
  healthy: boolean;
  /** Operations whose median latency was above their threshold. */
  aboveThreshold: Operation[];
}

export function median(samples: readonly number[]): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile, p in (0, 100]. */
export function percentile(samples: readonly number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}
