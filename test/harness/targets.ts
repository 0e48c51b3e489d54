// ProbeTarget objects for tests, every field filled, pointing at a harness Samba.
import type { ProbeTarget } from "../../shared/config/types.ts";
import { OPERATIONS, type Operation } from "../../shared/result.ts";
import { Secret } from "../../shared/secret.ts";
import type { SambaServer } from "./samba.ts";
import { fakeTarget } from "../../agent/scheduler/testing.ts";

/** Generous on purpose: tests assert classes and samples, not speed, unless they say so. */
export const TEST_TIMEOUTS = { operationTimeoutSeconds: 10, timeoutSeconds: 30 } as const;

/** High enough that loopback latencies never make a test target unhealthy by accident. */
export const TEST_THRESHOLD_MS = 10_000;

export interface TargetOverrides extends Partial<Omit<ProbeTarget, "password">> {
  /** Plain text here for convenience; wrapped in a Secret. */
  password?: string;
}

/** A target on samba's writable share as users[0] (the password with spaces and %), smbprobe's 5 × 4096 bytes. */
export function makeTarget(
  samba: Pick<SambaServer, "host" | "port" | "shares" | "users" | "workgroup">,
  overrides: TargetOverrides = {},
): ProbeTarget {
  const user = samba.users[0]!;
  const { password, ...rest } = overrides;
  const thresholds = Object.fromEntries(OPERATIONS.map((op) => [op, TEST_THRESHOLD_MS])) as Record<
    Operation,
    number
  >;
  return fakeTarget({
    name: `test-${samba.port}`,
    address: samba.host,
    port: samba.port,
    domain: samba.workgroup,
    share: samba.shares.writable,
    username: user.name,
    password: new Secret(password ?? user.password),
    ...TEST_TIMEOUTS,
    latencyThresholdsMs: thresholds,
    line: 0,
    ...rest,
  });
}
