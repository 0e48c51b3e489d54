// Test file names, smbclient command quoting and `ls` parsing.
//
// Every file and directory a run creates is named
//   .smbfleet-probe-<agentId>-<runStartEpochMs>-<suffix>
// so that a later run of the same agent can recognise what a run that died
// left behind, and never touches another agent's (or a person's) files.
import { TEST_FILE_PREFIX } from "./options.ts";

/** Characters SMB forbids in names, plus whitespace and control characters, are replaced in the agent id. */
const UNSAFE_ID_CHARS = /[^A-Za-z0-9._-]/g;

export function agentPrefix(agentId: string): string {
  const safe = agentId.replace(UNSAFE_ID_CHARS, "_");
  return `${TEST_FILE_PREFIX}${safe.length > 0 ? safe : "_"}-`;
}

let lastStamp = 0;

/**
 * The run stamp in this run's names: its start in epoch ms, made unique within
 * this process. Two runs of one agent that start in the same millisecond on
 * the same directory (two targets naming one server differently) must not
 * write the same file names.
 */
export function nextRunStamp(now: number = Date.now()): number {
  lastStamp = Math.max(now, lastStamp + 1);
  return lastStamp;
}

export interface RunNames {
  /** Remote name of file i (0-based). */
  file(i: number): string;
  /** Remote name file i has after the rename operation. */
  renamed(i: number): string;
  /** Remote directory for mkdir/rmdir. */
  dir: string;
}

export function runNames(agentId: string, runStartMs: number): RunNames {
  const base = `${agentPrefix(agentId)}${runStartMs}-`;
  return {
    file: (i) => `${base}${i}`,
    renamed: (i) => `${base}${i}-r`,
    dir: `${base}d`,
  };
}

/**
 * The run start encoded in one of this agent's names, or null when the name is
 * not this agent's. The part after the prefix must be <digits>-<suffix> with a
 * suffix we create, so agent "a" never claims agent "a-1"'s files.
 */
export function ownRunStart(agentId: string, name: string): number | null {
  const prefix = agentPrefix(agentId);
  if (!name.startsWith(prefix)) return null;
  const m = /^(\d{1,16})-(\d+(-r)?|d)$/.exec(name.slice(prefix.length));
  return m === null ? null : Number(m[1]);
}

export interface ListedEntry {
  name: string;
  isDirectory: boolean;
}

/**
 * Entries of smbclient `ls` output. Each entry line is
 * "  <name padded to 30> <attrs right-aligned in 7> <size>  <date>"; names may
 * hold spaces, so the line is matched from its end. "." and ".." are skipped.
 */
export function parseListing(lines: readonly string[]): ListedEntry[] {
  const entries: ListedEntry[] = [];
  for (const line of lines) {
    const m = /^ {2}(.+?) +([A-Za-z]*) +\d+ +\w{3} \w{3} +\d{1,2} \d\d:\d\d:\d\d \d{4}$/.exec(line);
    if (m === null) continue;
    const name = m[1]!;
    if (name === "." || name === "..") continue;
    entries.push({ name, isDirectory: m[2]!.includes("D") });
  }
  return entries;
}

/**
 * Entries this agent created in runs that cannot still be alive: a run lasts
 * at most its run timeout (then it is killed), so anything of ours stamped
 * earlier than that before this run's start is from a run that died. Files of
 * a run that may still be going (another target aliasing the same directory)
 * are left alone.
 */
export function staleEntries(
  entries: readonly ListedEntry[],
  agentId: string,
  currentRunStartMs: number,
  runTimeoutMs: number,
): ListedEntry[] {
  return entries.filter((e) => {
    const started = ownRunStart(agentId, e.name);
    return started !== null && started !== currentRunStartMs && started + runTimeoutMs < currentRunStartMs;
  });
}

/**
 * One smbclient command argument. smbclient splits its command line on
 * spaces unless the argument is in double quotes; a double quote cannot occur
 * in an SMB name, and a line break would end the command early, so both are refused.
 */
export function quoteArg(arg: string): string {
  if (/["\r\n]/.test(arg)) throw new RangeError(`cannot pass ${JSON.stringify(arg)} to smbclient`);
  return `"${arg}"`;
}
