// The SMB check's options and every limit it applies, each with its reason.
import type { Logger } from "../../../shared/logger.ts";

export interface SmbCheckOptions {
  /** This agent's id; it names the test files so that later runs can recognise their own leftovers. */
  agentId: string;
  smbclientPath?: string;
  /** coreutils stdbuf, which makes smbclient's stdin unbuffered and its output line-buffered (see FACTS.md). */
  stdbufPath?: string;
  /** Where the check makes its private 0700 temp dirs (local test files, authentication file), one per run in progress, reused by later runs. */
  tmpDir?: string;
  logger?: Logger;
}

export const DEFAULT_SMBCLIENT_PATH = "/usr/bin/smbclient";
export const DEFAULT_STDBUF_PATH = "/usr/bin/stdbuf";

/** Every test file and directory name starts with this, then the agent id, the run's start (epoch ms) and a counter. */
export const TEST_FILE_PREFIX = ".smbfleet-probe-";

export const LIMITS = {
  /**
   * Output bytes accepted for one command. The largest legitimate output is
   * ls_dir of remote_basedir, ~70 bytes per entry: 4 MiB is ~60,000 entries,
   * far beyond a probe directory. More means a runaway; the process is killed.
   */
  maxOutputBytesPerCommand: 4 * 1024 * 1024,
  /**
   * Between SIGTERM and SIGKILL of the smbclient process group. smbclient
   * exits on SIGTERM within milliseconds; a process stuck in the kernel gets
   * SIGKILL soon after, so a killed run ends well within a second.
   */
  killGraceMs: 200,
  /**
   * After `quit`, smbclient logs off (tree disconnect, logoff: two round
   * trips). It may take this long (capped by the run's remaining time) before
   * it is killed; the measurements are already taken by then.
   */
  quitWaitMs: 2_000,
  /**
   * A local run directory unused this long is removed. At the usual 60 s
   * interval every directory a steady load needs is reused within a minute;
   * one idle for 5 minutes was made for a burst that is over.
   */
  localDirIdleTtlMs: 5 * 60_000,
  /** smbclient's own -t (whole seconds) is the operation timeout rounded up plus this, so ours always fires first. */
  smbclientTimeoutLagSeconds: 1,
} as const;
