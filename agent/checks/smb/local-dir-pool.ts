// A pool of the SMB check's local run directories (local-dir.ts): as many as
// runs were going at once, fewer after a quiet spell.
//
// One pool per parent directory per process, shared by every check in it, so
// a check that is dropped leaves nothing open behind it. What is left when the
// process ends:
//   * a normal exit removes every directory (an 'exit' hook);
//   * a process killed without one (SIGKILL, a test runner's worker) leaves its
//     directories; their names carry its pid, and the next pool in the same
//     parent removes those of processes that are gone.
// (Processes in different pid namespaces sharing one tmp dir could take each
// other's live directory for a dead one: the run using it then fails locally
// once, and its directory is replaced.)
import { rmSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { LocalDir } from "./local-dir.ts";
import { processAlive } from "../../../shared/process-alive.ts";

export interface LocalDirPoolOptions {
  /** Where the directories are made. */
  parent: string;
  /** A directory idle this long is removed. */
  idleTtlMs: number;
}

const NAME_PREFIX = "smbfleet-run-";
/** mkdtemp appends six characters; the pid sits between prefix and them. */
const NAME = /^smbfleet-run-(\d+)-[A-Za-z0-9]{6}$/;

export class LocalDirPool {
  readonly #opts: LocalDirPoolOptions;
  /** Idle directories, the most recently used last: it is taken first, so the others age out. */
  readonly #idle: LocalDir[] = [];
  #swept = false;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(opts: LocalDirPoolOptions) {
    this.#opts = opts;
  }

  async acquire(): Promise<LocalDir> {
    if (!this.#swept) {
      this.#swept = true;
      void removeDeadProcessesDirs(this.#opts.parent);
    }
    const reused = this.#idle.pop();
    if (reused !== undefined) return reused;
    // mkdtemp creates the directory 0700.
    const path = await mkdtemp(join(this.#opts.parent, `${NAME_PREFIX}${process.pid}-`));
    track(path);
    return new LocalDir(path);
  }

  /** Gives a directory back; one that saw local trouble (`damaged`) is removed instead. */
  async release(dir: LocalDir, damaged: boolean): Promise<void> {
    if (damaged || this.#closed) {
      await discard(dir);
      return;
    }
    dir.idleSince = performance.now();
    this.#idle.push(dir);
    this.#scheduleExpiry();
  }

  /** Removes every idle directory now, and each one in use when it comes back. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await Promise.all(this.#idle.splice(0).map(discard));
  }

  #scheduleExpiry(): void {
    if (this.#timer !== null || this.#idle.length === 0) return;
    const oldest = this.#idle[0]!.idleSince;
    const dueIn = Math.max(0, oldest + this.#opts.idleTtlMs - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const cutoff = performance.now() - this.#opts.idleTtlMs;
      // The oldest are at the front.
      while (this.#idle.length > 0 && this.#idle[0]!.idleSince <= cutoff) void discard(this.#idle.shift()!);
      this.#scheduleExpiry();
    }, dueIn);
    // Housekeeping only: it must not keep the process alive.
    this.#timer.unref();
  }
}

const pools = new Map<string, LocalDirPool>();

/** The process's pool for `parent`, made on first use. */
export function sharedLocalDirPool(parent: string, idleTtlMs: number): LocalDirPool {
  let pool = pools.get(parent);
  if (pool === undefined) {
    pool = new LocalDirPool({ parent, idleTtlMs });
    pools.set(parent, pool);
  }
  return pool;
}

/** Directories of this process that still exist, removed when it exits. */
const live = new Set<string>();
let exitHookInstalled = false;

function track(path: string): void {
  live.add(path);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const p of live) rmSync(p, { recursive: true, force: true });
  });
}

async function discard(dir: LocalDir): Promise<void> {
  await dir.close();
  await rm(dir.path, { recursive: true, force: true }).catch(() => {});
  live.delete(dir.path);
}

/** Removes run directories in `parent` whose process is gone. Best effort: errors are ignored. */
export async function removeDeadProcessesDirs(parent: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(NAME.exec(name)?.[1] ?? Number.NaN);
    if (Number.isNaN(pid) || pid === process.pid || processAlive(pid)) continue;
    await rm(join(parent, name), { recursive: true, force: true }).catch(() => {});
  }
}
