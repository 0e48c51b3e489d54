// One probe run: smbprobe's sequence in one smbclient session, each command
// timed on its own, no artificial delays.
//
//   login, cd remote_basedir (untimed), N × write, ls_dir, N × (read + integrity),
//   [N × rename], N × unlink, [mkdir, rmdir], then (untimed) removal of this
//   agent's files left by runs that died.
//
// A failed write is not read or unlinked ("reads of nothing" on a read-only
// share); a failure of one file does not stop the others. A session that ends
// (timeout, crash, abort) stops the run; its files are removed by a later run.
import type { ProbeTarget } from "../../../shared/config/types.ts";
import { errorMessage } from "../../../shared/errors.ts";
import type { Logger } from "../../../shared/logger.ts";
import type { ProbeResult } from "../../../shared/result.ts";
import { buildInvocation } from "./invocation.ts";
import type { LocalDir, LocalFile } from "./local-dir.ts";
import type { LocalDirPool } from "./local-dir-pool.ts";
import { nextRunStamp, parseListing, quoteArg, runNames, staleEntries, type ListedEntry } from "./names.ts";
import { LIMITS } from "./options.ts";
import { RunRecorder } from "./recorder.ts";
import { SmbclientSession } from "./session.ts";
import { SessionEnded, Steps } from "./steps.ts";

export interface RunContext {
  agentId: string;
  smbclientPath: string;
  stdbufPath: string;
  /** Local directories (authentication file, put and get files), reused run after run. */
  localDirs: LocalDirPool;
  logger: Logger;
  env: NodeJS.ProcessEnv;
}

const PUT_OK = /^putting file /;
const GET_OK = /^getting file /;

export async function runSmbProbe(
  target: ProbeTarget,
  ctx: RunContext,
  signal: AbortSignal,
): Promise<ProbeResult> {
  const startedAtMs = Date.now();
  const t0 = performance.now();
  const opTimeoutMs = target.operationTimeoutSeconds * 1000;
  const runTimeoutMs = target.timeoutSeconds * 1000;
  const runDeadline = t0 + runTimeoutMs;
  const recorder = new RunRecorder();
  let local: LocalDir | null = null;
  /** Set on local trouble or a failed integrity check: the directory is not reused. */
  let localSuspect = false;
  let session: SmbclientSession | null = null;
  try {
    local = await ctx.localDirs.acquire();
    await local.setUsername(target.username);
    // Local test files are filled before smbclient starts, so their cost is in no sample.
    const written = await local.prepare(target.fileCount, target.fileSizeBytes);
    const inv = buildInvocation(
      target,
      { stdbuf: ctx.stdbufPath, smbclient: ctx.smbclientPath, authFile: local.authPath },
      ctx.env,
    );
    const loginTimeoutMs = Math.min(opTimeoutMs, runTimeoutMs);
    session = new SmbclientSession(
      {
        file: inv.file,
        args: inv.args,
        env: inv.env,
        maxOutputBytesPerCommand: LIMITS.maxOutputBytesPerCommand,
        killGraceMs: LIMITS.killGraceMs,
      },
      loginTimeoutMs,
      signal,
    );
    const steps = new Steps(session, recorder, { opTimeoutMs, runDeadline, runTimeoutMs });
    await steps.login(loginTimeoutMs);
    localSuspect = !(await sequence(target, ctx, steps, local, written, nextRunStamp(startedAtMs)));
  } catch (err) {
    if (!(err instanceof SessionEnded)) {
      localSuspect = true;
      // Local trouble (temp dir not writable, a name smbclient cannot take) or a bug: the run says so.
      recorder.failure(null, "internal", errorMessage(err));
      ctx.logger.error({ err, target: target.name }, "smb probe run failed locally");
    }
  } finally {
    if (session !== null) {
      if (signal.aborted) await session.kill();
      else await session.quit(Math.min(LIMITS.quitWaitMs, Math.max(0, runDeadline - performance.now())));
    }
    // After smbclient is gone: nothing writes into the directory any more.
    if (local !== null) await ctx.localDirs.release(local, localSuspect);
  }
  return recorder.result(target, startedAtMs, performance.now() - t0);
}

async function sequence(
  target: ProbeTarget,
  ctx: RunContext,
  steps: Steps,
  dir: LocalDir,
  local: LocalFile[],
  runStamp: number,
): Promise<boolean> {
  const names = runNames(ctx.agentId, runStamp);
  const basedir = target.remoteBasedir;
  if (basedir !== "" && basedir !== ".") {
    const cd = await steps.run("ls_dir", `cd ${quoteArg(basedir)}`, { untimed: true, chargeTo: "ls_dir" });
    if (!cd.ok) return true;
  }

  const onServer: { index: number; name: string }[] = [];
  for (const [i, file] of local.entries()) {
    const r = await steps.run("write", `put ${quoteArg(file.writePath)} ${quoteArg(names.file(i))}`, {
      successLine: PUT_OK,
    });
    if (r.ok) onServer.push({ index: i, name: names.file(i) });
  }

  const ls = await steps.run("ls_dir", "ls");
  const listing = ls.ok ? parseListing(ls.lines) : [];

  let intact = true;
  for (const f of onServer) {
    const file = local[f.index]!;
    const r = await steps.run("read", `get ${quoteArg(f.name)} ${quoteArg(file.readPath)}`, {
      successLine: GET_OK,
    });
    if (r.ok && !(await checkIntegrity(steps, f.name, dir, f.index, file.bytes))) intact = false;
  }

  if (target.rename) {
    for (const f of onServer) {
      const to = names.renamed(f.index);
      const r = await steps.run("rename", `rename ${quoteArg(f.name)} ${quoteArg(to)}`);
      if (r.ok) f.name = to;
    }
  }

  for (const f of onServer) await steps.run("unlink", `rm ${quoteArg(f.name)}`);

  if (target.mkdir) {
    const made = await steps.run("mkdir", `mkdir ${quoteArg(names.dir)}`);
    if (made.ok) await steps.run("rmdir", `rmdir ${quoteArg(names.dir)}`);
  }

  await removeStale(steps, ctx, listing, runStamp, target);
  return intact;
}

/** Records the integrity sample (local read-back and compare) or failure; false when the bytes differ. */
async function checkIntegrity(
  steps: Steps,
  name: string,
  dir: LocalDir,
  index: number,
  expected: Buffer,
): Promise<boolean> {
  const t = performance.now();
  const actual = await dir.readBack(index, expected.length);
  const same = actual.equals(expected);
  const ms = performance.now() - t;
  if (same) {
    steps.recordSample("integrity", ms);
    return true;
  }
  let at = 0;
  while (at < Math.min(actual.length, expected.length) && actual[at] === expected[at]) at++;
  const length = await dir.readSize(index);
  steps.recordFailure(
    "integrity",
    "integrity",
    `${name}: read back ${length} bytes, wrote ${expected.length}; first difference at byte ${at}`,
  );
  return false;
}

/** Untimed: a run that died left files; they go now (see staleEntries for which ones are safe to remove). */
async function removeStale(
  steps: Steps,
  ctx: RunContext,
  listing: readonly ListedEntry[],
  runStamp: number,
  target: ProbeTarget,
): Promise<void> {
  const stale = staleEntries(listing, ctx.agentId, runStamp, target.timeoutSeconds * 1000);
  for (const entry of stale) {
    const verb = entry.isDirectory ? "rmdir" : "rm";
    const r = await steps.run("unlink", `${verb} ${quoteArg(entry.name)}`, { untimed: true });
    if (r.ok) ctx.logger.info({ target: target.name, file: entry.name }, "removed a stale probe file");
    else
      ctx.logger.warn(
        { target: target.name, file: entry.name, error: r.message },
        "could not remove a stale probe file",
      );
  }
}
