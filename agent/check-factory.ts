// The check every probe target runs. Today every [[probes]] block is SMB;
// when another kind lands, the kind is picked here from CHECKS by the
// target's config and nothing else in the agent changes.
import type { Logger } from "../shared/logger.ts";
import { CHECKS } from "./checks/index.ts";
import type { Check } from "./checks/types.ts";

export function createProbeCheck(opts: { agentId: string; logger: Logger }): Check {
  return CHECKS.smb({ agentId: opts.agentId, logger: opts.logger });
}
