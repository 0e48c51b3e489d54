// A check kind is one module behind a tiny contract, picked from a map
// (agent/checks/index.ts). The scheduler and the sender never import SMB code.
import type { ProbeTarget } from "../../shared/config/types.ts";
import type { ProbeResult } from "../../shared/result.ts";

export interface Check {
  readonly kind: string;
  /**
   * Runs one probe against the target. Never throws for a failure of the
   * target (that is a result with a failureClass); throws only for a bug.
   * Aborting the signal kills whatever the run started and resolves soon.
   */
  run(target: ProbeTarget, signal: AbortSignal): Promise<ProbeResult>;
}
