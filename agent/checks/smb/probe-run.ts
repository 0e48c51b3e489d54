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
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProbeTarget } from "../../../shared/config/types.ts";
import { errorMessage } from "../../../shared/errors.ts";
import type { Logger } from "../../../shared/logger.ts";
import type { ProbeResult } from "../../../shared/result.ts";
import { buildInvocation, makeRunDir, removeRunDir, writeAuthFile } from "./invocation.ts";
import { nextRunStamp, parseListing, quoteArg, runNames, staleEntries, type ListedEntry } from "./names.ts";
import { LIMITS } from "./options.ts";
import { RunRecorder } from "./recorder.ts";
import { SmbclientSession } from "./session.ts";
import { SessionEnded, Steps } from "./steps.ts";

export interface RunContext {
  agentId: string;
  smbclientPath: string;
  stdbufPath: string;
  tmpDir: string;
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
  let runDir: string | null = null;
  let session: SmbclientSession | null = null;
  try {
    runDir = await makeRunDir(ctx.tmpDir);
    const authFile = await writeAuthFile(runDir, target.username);
    // Local test files are made before smbclient starts, so their cost is in no sample.
    const written = await makeLocalFiles(runDir, target.fileCount, target.fileSizeBytes);
    const inv = buildInvocation(
      target,
      { stdbuf: ctx.stdbufPath, smbclient: ctx.smbclientPath, authFile },
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
    await sequence(target, ctx, steps, runDir, written, nextRunStamp(startedAtMs));
  } catch (err) {
    if (!(err instanceof SessionEnded)) {
      // Local trouble (temp dir not writable, a name smbclient cannot take) or a bug: the run says so.
      recorder.failure(null, "internal", errorMessage(err));
      ctx.logger.error({ err, target: target.name }, "smb probe run failed locally");
    }
  } finally {
    if (session !== null) {
      if (signal.aborted) await session.kill();
      else await session.quit(Math.min(LIMITS.quitWaitMs, Math.max(0, runDeadline - performance.now())));
    }
    if (runDir !== null) await removeRunDir(runDir).catch(() => {});
  }
  return recorder.result(target, startedAtMs, performance.now() - t0);
}

interface LocalFile {
  path: string;
  bytes: Buffer;
}

async function makeLocalFiles(runDir: string, count: number, size: number): Promise<LocalFile[]> {
  const files: LocalFile[] = [];
  for (let i = 0; i < count; i++) {
    // Random content, so a server (or a cache on the way) cannot pass integrity by returning stale or zeroed bytes.
    const bytes = randomBytes(size);
    const path = join(runDir, `w-${i}`);
    await writeFile(path, bytes, { mode: 0o600 });
    files.push({ path, bytes });
  }
  return files;
}

async function sequence(
  target: ProbeTarget,
  ctx: RunContext,
  steps: Steps,
  runDir: string,
  local: LocalFile[],
  runStamp: number,
): Promise<void> {
  const names = runNames(ctx.agentId, runStamp);
  const basedir = target.remoteBasedir;
  if (basedir !== "" && basedir !== ".") {
    const cd = await steps.run("ls_dir", `cd ${quoteArg(basedir)}`, { untimed: true, chargeTo: "ls_dir" });
    if (!cd.ok) return;
  }

  const onServer: { index: number; name: string }[] = [];
  for (const [i, file] of local.entries()) {
    const r = await steps.run("write", `put ${quoteArg(file.path)} ${quoteArg(names.file(i))}`, {
      successLine: PUT_OK,
    });
    if (r.ok) onServer.push({ index: i, name: names.file(i) });
  }

  const ls = await steps.run("ls_dir", "ls");
  const listing = ls.ok ? parseListing(ls.lines) : [];

  for (const f of onServer) {
    const readPath = join(runDir, `r-${f.index}`);
    const r = await steps.run("read", `get ${quoteArg(f.name)} ${quoteArg(readPath)}`, {
      successLine: GET_OK,
    });
    if (r.ok) await checkIntegrity(steps, f.name, local[f.index]!.bytes, readPath);
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
}

async function checkIntegrity(steps: Steps, name: string, expected: Buffer, readPath: string): Promise<void> {
  const t = performance.now();
  const actual = await readFile(readPath);
  const same = actual.equals(expected);
  const ms = performance.now() - t;
  if (same) {
    steps.recordSample("integrity", ms);
    return;
  }
  let at = 0;
  while (at < Math.min(actual.length, expected.length) && actual[at] === expected[at]) at++;
  steps.recordFailure(
    "integrity",
    "integrity",
    `${name}: read back ${actual.length} bytes, wrote ${expected.length}; first difference at byte ${at}`,
  );
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
