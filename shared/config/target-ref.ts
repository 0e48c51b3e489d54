// A configured target as the rest of the fleet names it: the identity and
// description that travel with every result, without credentials or limits.
import type { TargetRef } from "../result.ts";
import type { ProbeTarget } from "./types.ts";

export function targetRefOf(t: ProbeTarget): TargetRef {
  return {
    name: t.name,
    address: t.address,
    port: t.port,
    domain: t.domain,
    share: t.share,
    basedir: t.remoteBasedir,
    labels: { ...t.labels },
  };
}
