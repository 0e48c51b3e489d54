// A run that threw (a bug in a check, a failed sink, a run that would not
// stop) still becomes a result, of class "internal", so that the operator
// sees it on /metrics and at HQ instead of the target going quiet.
import type { ProbeTarget } from "../../shared/config/types.ts";
import { errorMessage } from "../../shared/errors.ts";
import type { ProbeResult } from "../../shared/result.ts";
import { targetRefOf } from "../../shared/config/target-ref.ts";

export function internalResult(
  target: ProbeTarget,
  startedAtMs: number,
  durationMs: number,
  err: unknown,
): ProbeResult {
  return {
    target: targetRefOf(target),
    startedAtMs,
    durationMs,
    operations: [],
    failureClass: "internal",
    failureMessage: errorMessage(err),
    healthy: false,
    aboveThreshold: [],
  };
}
