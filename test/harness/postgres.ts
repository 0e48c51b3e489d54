// A real PostgreSQL 15 for tests and benchmarks: initdb into a temp dir, the
// postmaster on a reserved loopback port with its unix socket in that dir, run as
// the `postgres` OS user (PostgreSQL refuses to run as root). stop() ends it
// and removes the dir; stopServer()/startServer() keep the data dir so a test
// can take the database away and bring it back ("PostgreSQL stopped for 30 s");
// the port stays reserved meanwhile (reservePort), so nothing else takes it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { reservePort } from "./ports.ts";

const BIN = "/usr/lib/postgresql/15/bin";

/** initdb on this machine takes ~1 s; 60 s covers a loaded 2-core CI box. */
const INITDB_TIMEOUT_MS = 60_000;
/** How long the postmaster may take to accept connections after spawn (crash recovery included). */
const START_TIMEOUT_MS = 30_000;
/** Between tries to bind a port something outside the harness holds (reservePort keeps the harness's own off it). */
const BIND_RETRY_MS = 250;
/** Fast shutdown normally takes well under a second; past this we send SIGQUIT (immediate). */
const STOP_TIMEOUT_MS = 15_000;

export interface PostgresOptions {
  /**
   * fsync off by default: tests check what is committed, not what survives a
   * power cut, and fsync on a shared 2-core box only makes them slower.
   * bench/ passes true so that figures match production durability.
   */
  fsync?: boolean;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
  /**
   * Own process group, so a terminal's Ctrl-C (SIGINT, PostgreSQL's fast
   * shutdown) reaches only the caller, which stops the database last, after
   * the clients that still write to it (make demo).
   */
  detached?: boolean;
}

export interface RunningPostgres {
  /** Superuser URL of the `postgres` database on 127.0.0.1. */
  readonly url: string;
  readonly port: number;
  /** The temp dir holding data/ and the unix socket. */
  readonly dir: string;
  /** Creates a fresh database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** URL of a database by name (no creation). */
  urlFor(name: string): string;
  /** Fast shutdown that keeps the data dir; connections are cut. */
  stopServer(): Promise<void>;
  /** Starts the postmaster again on the same port and data dir. */
  startServer(): Promise<void>;
  /** Ends the server and removes the temp dir. */
  stop(): Promise<void>;
}

/** Every postmaster this process started, so an abandoned one is killed at exit. */
const live = new Set<ChildProcess>();
/** Temp dirs not yet removed by stop(), removed at exit. */
const dirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    // SIGQUIT = immediate shutdown: the postmaster takes its children with it.
    // (A SIGKILLed test process gets the same through setpriv --pdeathsig.)
    for (const child of live) child.kill("SIGQUIT");
    for (const dir of dirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // the dying postmaster may still be writing; leftovers in /tmp are harmless
      }
    }
  });
}

function postgresUser(): { uid: number; gid: number } {
  const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error("the postgres OS user is missing (install the postgresql package)");
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export async function startPostgres(options: PostgresOptions = {}): Promise<RunningPostgres> {
  installExitHook();
  const user = postgresUser();
  const dir = mkdtempSync(join(tmpdir(), "smbfleet-pg-"));
  dirs.add(dir);
  const data = join(dir, "data");
  const socketDir = join(dir, "sock");
  mkdirSync(data, { mode: 0o700 });
  mkdirSync(socketDir, { mode: 0o700 });
  for (const p of [dir, data, socketDir]) chownSync(p, user.uid, user.gid);

  const init = spawnSync(
    join(BIN, "initdb"),
    ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
    { uid: user.uid, gid: user.gid, encoding: "utf8", timeout: INITDB_TIMEOUT_MS, env: { PATH: BIN } },
  );
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr}`);
  }

  const reserved = await reservePort();
  const port = reserved.port;
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    port: String(port),
    unix_socket_directories: socketDir,
    fsync: options.fsync === true ? "on" : "off",
    // Logs go to stderr, which we keep only for failure messages.
    logging_collector: "off",
    ...options.settings,
  };
  const args = ["-D", data, ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])];
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const urlFor = (name: string): string => `postgres://postgres@127.0.0.1:${port}/${name}`;

  let child: ChildProcess | null = null;
  let stderrTail = "";

  const spawnServer = async (): Promise<void> => {
    if (child !== null) return;
    stderrTail = "";
    // setpriv drops to the postgres user and sets a parent-death signal, so a
    // test process killed outright (no exit hook runs) takes its server along.
    const proc = spawn(
      "setpriv",
      [
        `--reuid=${user.uid}`,
        `--regid=${user.gid}`,
        "--clear-groups",
        "--pdeathsig=SIGQUIT",
        join(BIN, "postgres"),
        ...args,
      ],
      {
        stdio: ["ignore", "ignore", "pipe"],
        env: { PATH: `${BIN}:/usr/bin:/bin`, LC_ALL: "C" },
        detached: options.detached ?? false,
      },
    );
    proc.stderr?.on("data", (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString("utf8")).slice(-4000);
    });
    child = proc;
    live.add(proc);
    proc.once("exit", () => {
      live.delete(proc);
      if (child === proc) child = null;
    });
    await waitReady(url, proc, () => stderrTail);
  };

  /** spawnServer, tried again while the port is held by something else, up to START_TIMEOUT_MS. */
  const startServer = async (): Promise<void> => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        return await spawnServer();
      } catch (err) {
        if (!(err instanceof BindError) || Date.now() > deadline) throw err;
        await sleep(BIND_RETRY_MS);
      }
    }
  };

  const stopServer = async (): Promise<void> => {
    const proc = child;
    if (proc === null || proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGINT"); // fast shutdown: roll back open transactions, cut clients
    const timer = setTimeout(() => proc.kill("SIGQUIT"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  try {
    await startServer();
  } catch (err) {
    await stopServer();
    rmSync(dir, { recursive: true, force: true });
    reserved.release();
    throw err;
  }

  return {
    url,
    port,
    dir,
    urlFor,
    async createDatabase(name: string): Promise<string> {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${JSON.stringify(name)}`);
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`CREATE DATABASE ${name}`);
      } finally {
        await sql.end();
      }
      return urlFor(name);
    },
    stopServer,
    startServer,
    async stop(): Promise<void> {
      await stopServer();
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
      reserved.release();
    },
  };
}

async function waitReady(url: string, proc: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      // Its last words may still be in the pipe when the exit is seen.
      if (proc.stderr !== null && !proc.stderr.closed) await once(proc.stderr, "close");
      const message = `postgres exited during start-up: ${stderr()}`;
      throw /could not bind|Address already in use/.test(stderr())
        ? new BindError(message)
        : new Error(message);
    }
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`SELECT 1`;
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        proc.kill("SIGQUIT");
        throw new Error(`postgres did not accept connections in ${START_TIMEOUT_MS} ms: ${String(err)}`, {
          cause: err,
        });
      }
    } finally {
      await sql.end({ timeout: 1 });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The postmaster could not bind its port: something outside the harness holds it for now. */
class BindError extends Error {}
