// The SMB check kind: createSmbCheck({ agentId }) → Check with kind "smb".
//
// run(target, signal) resolves with a ProbeResult, never rejects. Its login
// sample runs from spawning smbclient to the end of tree connect, so it
// includes smbclient's process start-up (~25 ms here); every other sample is
// one command, from writing it to smbclient's stdin to reading its delimiter.
// A run whose signal is aborted resolves soon with failureClass "internal"
// and a message containing "run aborted": the target did nothing wrong, so a
// caller that aborts on shutdown should drop that result rather than record it.
import { tmpdir } from "node:os";
import type { ProbeTarget } from "../../../shared/config/types.ts";
import { silentLogger } from "../../../shared/logger.ts";
import type { ProbeResult } from "../../../shared/result.ts";
import type { Check } from "../types.ts";
import { sharedLocalDirPool } from "./local-dir-pool.ts";
import { DEFAULT_SMBCLIENT_PATH, DEFAULT_STDBUF_PATH, LIMITS, type SmbCheckOptions } from "./options.ts";
import { runSmbProbe, type RunContext } from "./probe-run.ts";

export type { SmbCheckOptions } from "./options.ts";

export function createSmbCheck(opts: SmbCheckOptions): Check {
  if (opts.agentId.length === 0) throw new RangeError("createSmbCheck: agentId must not be empty");
  const ctx: RunContext = {
    agentId: opts.agentId,
    smbclientPath: opts.smbclientPath ?? DEFAULT_SMBCLIENT_PATH,
    stdbufPath: opts.stdbufPath ?? DEFAULT_STDBUF_PATH,
    localDirs: sharedLocalDirPool(opts.tmpDir ?? tmpdir(), LIMITS.localDirIdleTtlMs),
    logger: opts.logger ?? silentLogger(),
    env: process.env,
  };
  return {
    kind: "smb",
    run(target: ProbeTarget, signal: AbortSignal): Promise<ProbeResult> {
      return runSmbProbe(target, ctx, signal);
    },
  };
}
