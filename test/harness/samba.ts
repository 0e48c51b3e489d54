// A real Samba server on loopback for tests, demos and benchmarks.
//
//   const samba = await startSamba();
//   // //127.0.0.1/writable on samba.port, user samba.users[0] (password with spaces and %)
//   await samba.stop();
//
// Each instance is one `smbd` in the foreground with its own smb.conf, passdb
// and state in a fresh temp dir, listening on a free loopback port only, so
// several instances (and several test files) can run at once. The Unix users
// it authenticates are created once per machine (useradd) and stay; their
// Samba passwords live in each instance's own tdbsam.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  chmodSync,
  chownSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, killProcessGroup, LOOPBACK, waitForPort } from "./ports.ts";

export interface SambaUser {
  name: string;
  password: string;
}

export interface SambaOptions {
  /** smbd binary; Debian's by default. */
  smbdPath?: string;
  /** smbd `log level`, e.g. 3 or "1 smb2:10" to see every SMB2 request in logFile. */
  logLevel?: number | string;
  /** Extra [global] lines, verbatim (e.g. "server max protocol = SMB2_10"). */
  globalOptions?: string[];
  /** Parent of the temp dir; os.tmpdir() by default. */
  parentDir?: string;
}

export interface SambaServer {
  host: string;
  port: number;
  /** Share names: `writable` (read-write), `readonly`, `missing` (not configured: tree connect fails). */
  shares: { writable: string; readonly: string; missing: string };
  /** Where the configured shares live on disk, to check what a probe left behind. */
  sharePaths: { writable: string; readonly: string };
  /** users[0] has a password with spaces and `%`; users[1] a plain one. Both may use every share. */
  users: SambaUser[];
  workgroup: string;
  /** The instance's temp dir (smb.conf, passdb, locks, logs, shares). Removed by stop(). */
  dir: string;
  logFile: string;
  /** smbd's process group id (smbd forks one child per connection into it). */
  pgid: number;
  /** Kills smbd and all its children, waits until none is alive, removes dir. Idempotent. */
  stop(): Promise<void>;
}

export const SAMBA_USERS: readonly SambaUser[] = [
  { name: "smbfleet-test", password: "p@ss word %42" },
  { name: "smbfleet-plain", password: "plainpass42" },
];

const WORKGROUP = "SMBFLEET";
const DEFAULT_SMBD = "/usr/sbin/smbd";
/** smbd is listening within ~150 ms here; 15 s leaves room for a machine busy with other tests. */
const READY_TIMEOUT_MS = 15_000;
/** Attempts with a fresh port when another process took the one freePort() returned. */
const BIND_ATTEMPTS = 3;
/** smbd exits on SIGTERM within milliseconds; its per-connection children may need a little longer. */
const STOP_GRACE_MS = 500;
/** How often the watchdog checks that the process that started smbd is still alive. */
const WATCHDOG_POLL_S = 0.5;

export async function startSamba(opts: SambaOptions = {}): Promise<SambaServer> {
  ensureUnixUsers(SAMBA_USERS.map((u) => u.name));
  const dir = mkdtempSync(join(opts.parentDir ?? tmpdir(), "smbfleet-samba-"));
  try {
    // smbd runs share access as the logged-in user, who must be able to traverse to the shares.
    chmodSync(dir, 0o755);
    const sharePaths = {
      writable: join(dir, "shares", "writable"),
      readonly: join(dir, "shares", "readonly"),
    };
    for (const sub of ["private", "lock", "state", "cache", "pid", "log", "ncalrpc"]) {
      mkdirSync(join(dir, sub), { mode: 0o700 });
    }
    mkdirSync(sharePaths.writable, { recursive: true, mode: 0o777 });
    mkdirSync(sharePaths.readonly, { mode: 0o755 });
    // mkdir's mode is masked by the umask; the writable share must be writable by both users.
    chmodSync(sharePaths.writable, 0o777);
    chmodSync(join(dir, "shares"), 0o755);
    writeFileSync(join(sharePaths.readonly, "README.txt"), "smbfleet read-only test share\n");

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const confPath = join(dir, "smb.conf");
      const logFile = join(dir, "log", "smbd.log");
      writeFileSync(confPath, smbConf({ dir, port, logFile, sharePaths, opts }));
      if (attempt === 1) for (const user of SAMBA_USERS) addPassdbUser(confPath, user);
      const child = spawnSmbd(opts.smbdPath ?? DEFAULT_SMBD, confPath, join(dir, "log", "smbd.stdout"));
      let exited = false;
      let spawnError: Error | null = null;
      child.once("exit", () => (exited = true));
      child.once("error", (err) => {
        exited = true;
        spawnError = err;
      });
      if (await waitForPort(LOOPBACK, port, READY_TIMEOUT_MS, () => !exited)) {
        return server({ dir, port, logFile, sharePaths, child, watchdog: startWatchdog(child.pid!, dir) });
      }
      if (spawnError !== null) {
        throw new Error(
          `startSamba: cannot run ${opts.smbdPath ?? DEFAULT_SMBD} (is the samba package installed?)`,
          {
            cause: spawnError,
          },
        );
      }
      if (child.pid !== undefined) await killProcessGroup(child.pid, STOP_GRACE_MS);
      if (attempt >= BIND_ATTEMPTS) {
        throw new Error(`startSamba: smbd did not listen on ${LOOPBACK}:${port}; see ${logFile}`);
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function server(s: {
  dir: string;
  port: number;
  logFile: string;
  sharePaths: SambaServer["sharePaths"];
  child: ChildProcess;
  watchdog: ChildProcess;
}): SambaServer {
  const pgid = s.child.pid!;
  let stopping: Promise<void> | null = null;
  return {
    host: LOOPBACK,
    port: s.port,
    shares: { writable: "writable", readonly: "readonly", missing: "missing" },
    sharePaths: s.sharePaths,
    users: SAMBA_USERS.map((u) => ({ ...u })),
    workgroup: WORKGROUP,
    dir: s.dir,
    logFile: s.logFile,
    pgid,
    stop() {
      stopping ??= (async () => {
        // The whole group: the watchdog's own `sleep` would otherwise outlive stop() by up to a poll.
        killGroupNow(s.watchdog);
        const left = await killProcessGroup(pgid, STOP_GRACE_MS);
        rmSync(s.dir, { recursive: true, force: true });
        if (left.length > 0) throw new Error(`startSamba: smbd processes still alive: ${left.join(", ")}`);
      })();
      return stopping;
    },
  };
}

/**
 * If this process dies without stop() (SIGKILL, a test runner killing its
 * worker), smbd would live on as an orphan holding its port. A tiny detached
 * shell polls for this process and, once it is gone, kills smbd's group and
 * removes the temp dir. stop() kills the watchdog first.
 */
const WATCHDOG = `
parent=$1; pgid=$2; dir=$3
while kill -0 "$parent" 2>/dev/null; do sleep ${WATCHDOG_POLL_S}; done
kill -s TERM -- "-$pgid" 2>/dev/null
sleep ${STOP_GRACE_MS / 1000}
kill -s KILL -- "-$pgid" 2>/dev/null
rm -rf -- "$dir"
`;

/** SIGKILLs a detached child's process group (it leads one); falls back to the child alone. */
function killGroupNow(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}

function startWatchdog(pgid: number, dir: string): ChildProcess {
  const watchdog = spawn(
    "/bin/sh",
    ["-c", WATCHDOG, "smbfleet-samba-watchdog", String(process.pid), String(pgid), dir],
    {
      detached: true,
      stdio: "ignore",
    },
  );
  watchdog.unref();
  return watchdog;
}

function spawnSmbd(smbdPath: string, confPath: string, stdoutPath: string): ChildProcess {
  const out = openSync(stdoutPath, "a");
  try {
    // detached: smbd leads its own process group, so stop() reaches every per-connection child.
    return spawn(smbdPath, ["--foreground", "--no-process-group", `--configfile=${confPath}`], {
      detached: true,
      stdio: ["ignore", out, out],
    });
  } finally {
    closeSync(out);
  }
}

function smbConf(c: {
  dir: string;
  port: number;
  logFile: string;
  sharePaths: SambaServer["sharePaths"];
  opts: SambaOptions;
}): string {
  const p = (sub: string) => join(c.dir, sub);
  return [
    "[global]",
    `  workgroup = ${WORKGROUP}`,
    "  server role = standalone server",
    `  smb ports = ${c.port}`,
    `  interfaces = ${LOOPBACK}`,
    "  bind interfaces only = yes",
    "  disable netbios = yes",
    "  disable spoolss = yes",
    "  load printers = no",
    "  printing = bsd",
    "  printcap name = /dev/null",
    `  passdb backend = tdbsam:${p("private/passdb.tdb")}`,
    `  private dir = ${p("private")}`,
    `  lock directory = ${p("lock")}`,
    `  state directory = ${p("state")}`,
    `  cache directory = ${p("cache")}`,
    `  pid directory = ${p("pid")}`,
    `  ncalrpc dir = ${p("ncalrpc")}`,
    `  log file = ${c.logFile}`,
    `  log level = ${c.opts.logLevel ?? 1}`,
    "  max log size = 0",
    // Tests must see a wrong password as a logon failure, not as a guest login.
    "  map to guest = never",
    "  obey pam restrictions = no",
    "  unix password sync = no",
    ...(c.opts.globalOptions ?? []).map((line) => `  ${line}`),
    "",
    "[writable]",
    `  path = ${c.sharePaths.writable}`,
    "  read only = no",
    "",
    "[readonly]",
    `  path = ${c.sharePaths.readonly}`,
    "  read only = yes",
    "",
  ].join("\n");
}

/** The password goes to smbpasswd on stdin, never on argv. */
function addPassdbUser(confPath: string, user: SambaUser): void {
  const r = spawnSync("smbpasswd", ["-c", confPath, "-s", "-a", user.name], {
    input: `${user.password}\n${user.password}\n`,
    encoding: "utf8",
  });
  if (r.status !== 0)
    throw new Error(`startSamba: smbpasswd -a ${user.name} failed: ${r.stderr || r.stdout}`);
}

/**
 * Creates missing Unix accounts. Several harness instances may race here
 * (useradd then fails on its lock or on "already exists"), so the result is
 * checked with getent rather than useradd's exit code.
 */
function ensureUnixUsers(names: string[]): void {
  for (const name of names) {
    for (let attempt = 0; attempt < 20 && !unixUserExists(name); attempt++) {
      spawnSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]);
      if (!unixUserExists(name)) sleepSync(50);
    }
    if (!unixUserExists(name))
      throw new Error(`startSamba: could not create Unix user ${name} (run as root)`);
  }
}

function unixUserExists(name: string): boolean {
  return spawnSync("getent", ["passwd", name]).status === 0;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Gives a file to a Unix user, as if that user had created it over SMB (e.g. fake stale probe files). */
export function chownToUser(path: string, user: string): void {
  const uid = spawnSync("id", ["-u", user], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", user], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0) throw new Error(`chownToUser: no Unix user ${user}`);
  chownSync(path, Number(uid.stdout.trim()), Number(gid.stdout.trim()));
}
