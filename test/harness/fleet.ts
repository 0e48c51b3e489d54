// A fleet on loopback for end-to-end tests and bench/fleet: the fleet PKI in a
// temp dir, `smbfleet aggregator` as a real child process (so SIGKILL is
// real) on ports that survive a restart, `smbfleet agent` configs that ship to
// it, and the row counts that prove "zero lost, zero duplicated".
//
//   const pki = await createFleetPki(dir);
//   const agg = await startAggregatorProcess({ dir, pki, databaseUrl });
//   agg.kill("SIGKILL"); await agg.restart();   // same ports, same config
//   const stored = await storedResults(sql, "paris-01");
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { initCa, issueAgent, issueServer, type IssuedFiles } from "../../shared/tls/pki.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { LOOPBACK, reservePort, waitForPort } from "./ports.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
/** Migrations and listeners take ~1 s here; a 2-core box shared with other tests needs far more. */
const START_TIMEOUT_MS = 30_000;
/** A graceful stop waits for in-flight batches (the aggregator's own grace is 10 s). */
const STOP_TIMEOUT_MS = 15_000;
/** Between tries to bind a port something outside the harness holds (reservePort keeps the harness's own off it). */
const BIND_RETRY_MS = 250;
/** How often readiness is polled while a child starts. */
const POLL_MS = 100;
/** Log lines kept per child: enough to explain a failure, bounded for long runs. */
const MAX_LOG_LINES = 5_000;

/** Every child this process started and has not seen exit; SIGKILLed if the test process exits first. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }
  live.add(child);
  child.once("exit", () => live.delete(child));
}

const q = (s: string): string => JSON.stringify(s);

export interface FleetPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** Issues (once per name) the agent's certificate and returns its files. */
  agent(site: string, agent: string): Promise<IssuedFiles>;
}

/** A fleet CA and a server certificate for localhost / 127.0.0.1 in dir. */
export async function createFleetPki(dir: string): Promise<FleetPki> {
  await initCa(dir);
  const server = await issueServer(dir, { dns: ["localhost"], ip: [LOOPBACK] });
  const issued = new Map<string, Promise<IssuedFiles>>();
  return {
    dir,
    ca: server.ca,
    serverCert: server.cert,
    serverKey: server.key,
    agent(site, agent) {
      let files = issued.get(agent);
      if (files === undefined) {
        files = issueAgent(dir, { site, agent, force: true });
        issued.set(agent, files);
      }
      return files;
    },
  };
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface AggregatorOptions {
  /** Config, logs and nothing else go here. */
  dir: string;
  pki: FleetPki;
  databaseUrl: string;
  /** Fixed ports (0 or absent: a reserved one, kept across restarts: see reservePort). */
  grpcPort?: number;
  httpPort?: number;
  /** Database pool size (the aggregator's default otherwise). */
  poolSize?: number;
  /** Extra TOML appended to the config, e.g. an [ingest] table. */
  extraToml?: string;
  /** A name for this replica's files and log lines. */
  name?: string;
  env?: NodeJS.ProcessEnv;
  /** Protect its HTTP endpoints with this bearer token (SMBFLEET_HTTP_TOKEN); readiness is polled with it. */
  httpToken?: string;
  /** Own process group, so a terminal's Ctrl-C reaches only the caller (make demo), which then stops it once. */
  detached?: boolean;
  /** How long the child may take to become ready; default START_TIMEOUT_MS. */
  startTimeoutMs?: number;
  /**
   * Aborting while the child starts kills it, and the start rejects: a test
   * that fails before start-up finishes leaves no child behind.
   */
  signal?: AbortSignal;
}

export interface AggregatorProcess {
  readonly name: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** host:port for an agent's [aggregator] url. */
  readonly url: string;
  readonly configFile: string;
  /** The current child's pid (changes on restart). */
  readonly pid: number;
  /** JSON log lines of every run so far, oldest dropped beyond a bound. */
  readonly logs: LogLine[];
  /** Non-JSON stdout and all stderr. */
  readonly otherOutput: string[];
  /** True while a child is running. */
  running(): boolean;
  /** Sends a signal and waits for the child to exit (no grace: SIGKILL means SIGKILL). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM, SIGKILL after a timeout; resolves with the exit code (null if killed). */
  stop(): Promise<number | null>;
  /** Starts the child again with the same config and ports; waits until it is ready. */
  restart(): Promise<void>;
  /** Gives up the ports it reserved (no restart() after this); otherwise they are freed at exit. */
  releasePorts(): void;
}

export function writeAggregatorConfig(
  file: string,
  o: Pick<AggregatorOptions, "pki" | "databaseUrl" | "poolSize" | "extraToml"> & {
    grpcPort: number;
    httpPort: number;
  },
): void {
  const lines = [
    "[server]",
    `grpc_listen = ${q(`${LOOPBACK}:${o.grpcPort}`)}`,
    `http_listen = ${q(`${LOOPBACK}:${o.httpPort}`)}`,
    "",
    "[tls]",
    `ca = ${q(o.pki.ca)}`,
    `cert = ${q(o.pki.serverCert)}`,
    `key = ${q(o.pki.serverKey)}`,
    "",
    "[database]",
    `url = ${q(o.databaseUrl)}`,
    ...(o.poolSize === undefined ? [] : [`pool_size = ${o.poolSize}`]),
    "",
    o.extraToml ?? "",
  ];
  writeFileSync(file, lines.join("\n"));
}

/** `node main.ts aggregator --config F` on loopback; resolves once /readyz answers 200 and gRPC accepts. */
export async function startAggregatorProcess(opts: AggregatorOptions): Promise<AggregatorProcess> {
  const name = opts.name ?? "aggregator";
  // Reserved until releasePorts() or this process's exit: restart() binds them again after a kill.
  const reserved = [opts.grpcPort ? null : await reservePort(), opts.httpPort ? null : await reservePort()];
  const grpcPort = opts.grpcPort || reserved[0]!.port;
  const httpPort = opts.httpPort || reserved[1]!.port;
  mkdirSync(opts.dir, { recursive: true });
  const configFile = join(opts.dir, `${name}.toml`);
  writeAggregatorConfig(configFile, { ...opts, grpcPort, httpPort });

  const logs: LogLine[] = [];
  const otherOutput: string[] = [];
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  /** Starts the child and waits until it is ready; false when it exited because a port was taken. */
  const trySpawn = async (deadline: number): Promise<boolean> => {
    const env = opts.env ?? process.env;
    const proc = spawn(process.execPath, [MAIN, "aggregator", "--config", configFile], {
      env: opts.httpToken === undefined ? env : { ...env, SMBFLEET_HTTP_TOKEN: opts.httpToken },
      stdio: ["ignore", "pipe", "pipe"],
      detached: opts.detached ?? false,
    });
    track(proc);
    child = proc;
    exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    const keep = <T>(list: T[], item: T): void => {
      list.push(item);
      if (list.length > MAX_LOG_LINES) list.splice(0, list.length - MAX_LOG_LINES);
    };
    createInterface({ input: proc.stdout }).on("line", (text) => {
      try {
        keep(logs, JSON.parse(text) as LogLine);
      } catch {
        keep(otherOutput, text);
      }
    });
    createInterface({ input: proc.stderr }).on("line", (text) => keep(otherOutput, `[stderr] ${text}`));
    const alive = (): boolean => proc.exitCode === null && proc.signalCode === null;
    const [logsBefore, otherBefore] = [logs.length, otherOutput.length];
    let ready = false;
    while (!ready && alive() && Date.now() < deadline && opts.signal?.aborted !== true) {
      ready =
        (await readyz(httpPort, opts.httpToken)) && (await waitForPort(LOOPBACK, grpcPort, 1_000, alive));
      if (!ready) await sleep(POLL_MS);
    }
    if (ready) return true;
    proc.kill("SIGKILL");
    await exited;
    const said = [...logs.slice(logsBefore).map((l) => JSON.stringify(l)), ...otherOutput.slice(otherBefore)];
    if (said.some((line) => /EADDRINUSE|address already in use/i.test(line)) && Date.now() < deadline) {
      return false;
    }
    const tail = [...logs.slice(-20).map((l) => JSON.stringify(l)), ...otherOutput.slice(-20)];
    throw new Error(`${name} did not become ready on ${grpcPort}/${httpPort}:\n${tail.join("\n")}`);
  };

  /** trySpawn again while a port is held by something else, up to START_TIMEOUT_MS. */
  const spawnChild = async (): Promise<void> => {
    const deadline = Date.now() + (opts.startTimeoutMs ?? START_TIMEOUT_MS);
    while (!(await trySpawn(deadline))) await sleep(BIND_RETRY_MS);
  };

  const kill = async (signal: NodeJS.Signals = "SIGKILL"): Promise<void> => {
    const proc = child;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    await exited;
  };

  await spawnChild();
  return {
    name,
    grpcPort,
    httpPort,
    url: `${LOOPBACK}:${grpcPort}`,
    configFile,
    get pid() {
      return child?.pid ?? -1;
    },
    logs,
    otherOutput,
    running: () => child !== null && child.exitCode === null && child.signalCode === null,
    kill,
    async stop() {
      const proc = child;
      if (proc === null) return null;
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
      return proc.exitCode;
    },
    async restart() {
      await kill("SIGKILL");
      await spawnChild();
    },
    releasePorts() {
      for (const r of reserved) r?.release();
    },
  };
}

async function readyz(port: number, token?: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${LOOPBACK}:${port}/readyz`, {
      signal: AbortSignal.timeout(1_000),
      ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }),
    });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

export interface AgentConfigOptions {
  dir: string;
  site: string;
  agent: string;
  aggregatorUrl: string;
  pki: FleetPki;
  /** Samba to probe, or any host/port (a closed port makes every run an `unreachable` failure). */
  smb: { host: string; port: number; workgroup: string; share: string; user: string; password: string };
  /** How many [[probes]]: t0, t1, … on the same share, each in its own remote_basedir (which must exist). */
  targets: number;
  intervalSeconds: number;
}

/**
 * Writes dir/agent.toml (+ .secrets.toml, 0600) for `smbfleet agent` shipping
 * to the aggregator with its own certificate; returns the config path. The
 * targets differ by name and remote_basedir (t0, t1, …: directories the
 * caller creates in the share), so each is its own target at HQ.
 */
export async function writeFleetAgentConfig(o: AgentConfigOptions): Promise<string> {
  mkdirSync(o.dir, { recursive: true });
  const files = await o.pki.agent(o.site, o.agent);
  const lines = [
    "[agent]",
    `site = ${q(o.site)}`,
    `id = ${q(o.agent)}`,
    `http_listen = ${q(`${LOOPBACK}:0`)}`,
    `buffer_path = ${q(join(o.dir, "buffer.db"))}`,
    "",
    "[aggregator]",
    `url = ${q(o.aggregatorUrl)}`,
    `ca = ${q(files.ca)}`,
    `cert = ${q(files.cert)}`,
    `key = ${q(files.key)}`,
  ];
  for (let i = 0; i < o.targets; i++) {
    lines.push(
      "",
      "[[probes]]",
      `name = ${q(`t${i}`)}`,
      `address = ${q(o.smb.host)}`,
      `port = ${o.smb.port}`,
      `domain = ${q(o.smb.workgroup)}`,
      `share = ${q(o.smb.share)}`,
      `username = ${q(o.smb.user)}`,
      `password = "@format {this.secrets.users.probe}"`,
      `remote_basedir = ${q(`t${i}`)}`,
      `interval = ${o.intervalSeconds}`,
    );
  }
  const file = join(o.dir, "agent.toml");
  writeFileSync(file, [...lines, ""].join("\n"));
  writeFileSync(join(o.dir, ".secrets.toml"), `[secrets.users]\nprobe = ${q(o.smb.password)}\n`, {
    mode: 0o600,
  });
  return file;
}

/** What PostgreSQL holds for one agent, in the shape the fault tests compare. */
export interface StoredResults {
  rows: number;
  distinctSeqs: number;
  /** Sorted ascending. */
  seqs: number[];
  /** seq → failure_message (the synthetic producers' unique marker). */
  markers: Map<number, string | null>;
  /** Distinct (target, started_at) pairs: a real agent never starts one target twice at once. */
  distinctRuns: number;
  late: number;
}

export type Sql = postgres.Sql<Record<string, never>>;

/** A small pool for the test's own queries (separate from the aggregator's). */
export function testSql(url: string): Sql {
  return postgres(url, { max: 2, onnotice: () => {} });
}

export async function storedResults(sql: Sql, agent: string): Promise<StoredResults> {
  const rows = await sql<{ seq: string; msg: string | null; run: string; late: boolean }[]>`
    SELECT seq::text AS seq, failure_message AS msg, target_id::text || '@' || started_at::text AS run, late
    FROM results WHERE agent_id = ${agent}`;
  const seqs = rows.map((r) => Number(r.seq)).sort((a, b) => a - b);
  return {
    rows: rows.length,
    distinctSeqs: new Set(seqs).size,
    seqs,
    markers: new Map(rows.map((r) => [Number(r.seq), r.msg])),
    distinctRuns: new Set(rows.map((r) => r.run)).size,
    late: rows.filter((r) => r.late).length,
  };
}

/** 1..n, for comparing seq sets. */
export function seqRange(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}
