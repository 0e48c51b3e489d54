// The measured process of bench/drain: `smbfleet agent` as deployed —
// bin/smbfleet (so its V8 flags), a full agent.toml with [agent] (buffer,
// HTTP listener), [aggregator] and [[probes]] — started on a buffer file
// that was filled beforehand. Its memory is sampled from /proc while it
// runs: its own VmRSS and that of every live descendant (the smbclients its
// probes start); its own peak is the kernel's VmHWM.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { LAUNCHER } from "../../shared/launcher.ts";
import { descendants, LOOPBACK } from "../../test/harness/ports.ts";
import { cpuMs, peakRssBytes, reapedChildrenCpuMs, rssBytes } from "../shared/proc.ts";

/** The agent's HTTP server is up within a second or two; a loaded 2-core box may take far longer. */
const START_TIMEOUT_MS = 60_000;
/** SIGTERM → exit: the agent's own grace (scheduler, sender) is ~10 s. */
const STOP_TIMEOUT_MS = 20_000;
/** Memory sampling period: each sample scans /proc for descendants (a few ms of this process's CPU). */
const SAMPLE_MS = 200;
const POLL_MS = 100;

const q = (s: string): string => JSON.stringify(s);

/** Where the agent's probes point. */
export type ProbeTargets =
  | {
      kind: "samba";
      host: string;
      port: number;
      workgroup: string;
      share: string;
      user: string;
      password: string;
    }
  | { kind: "unreachable"; port: number };

export interface AgentConfigOptions {
  dir: string;
  site: string;
  agent: string;
  bufferPath: string;
  /** Must hold the filled buffer: beyond it the agent drops the oldest at start. */
  bufferMaxBytes: number;
  httpPort: number;
  aggregatorUrl: string;
  tls: { ca: string; cert: string; key: string };
  probes: ProbeTargets;
  targets: number;
  intervalSeconds: number;
}

/** Writes dir/agent.toml and dir/.secrets.toml (0600); returns the config path. */
export function writeAgentConfig(o: AgentConfigOptions): string {
  mkdirSync(o.dir, { recursive: true });
  const smb =
    o.probes.kind === "samba"
      ? o.probes
      : {
          host: LOOPBACK,
          port: o.probes.port,
          workgroup: "WORKGROUP",
          share: "bench",
          user: "probe",
          password: "x",
        };
  const lines = [
    "[agent]",
    `site = ${q(o.site)}`,
    `id = ${q(o.agent)}`,
    `buffer_path = ${q(o.bufferPath)}`,
    `buffer_max_bytes = ${o.bufferMaxBytes}`,
    `http_listen = ${q(`${LOOPBACK}:${o.httpPort}`)}`,
    "",
    "[aggregator]",
    `url = ${q(o.aggregatorUrl)}`,
    `ca = ${q(o.tls.ca)}`,
    `cert = ${q(o.tls.cert)}`,
    `key = ${q(o.tls.key)}`,
  ];
  for (let i = 0; i < o.targets; i++) {
    lines.push(
      "",
      "[[probes]]",
      `name = ${q(`t${i}`)}`,
      `address = ${q(smb.host)}`,
      `port = ${smb.port}`,
      `domain = ${q(smb.workgroup)}`,
      `share = ${q(smb.share)}`,
      `username = ${q(smb.user)}`,
      `password = "@format {this.secrets.users.probe}"`,
      `remote_basedir = ${q(`t${i}`)}`,
      `interval = ${o.intervalSeconds}`,
    );
  }
  const file = join(o.dir, "agent.toml");
  writeFileSync(file, [...lines, ""].join("\n"));
  writeFileSync(join(o.dir, ".secrets.toml"), `[secrets.users]\nprobe = ${q(smb.password)}\n`, {
    mode: 0o600,
  });
  return file;
}

export interface MemorySample {
  /** The agent process's own peak (VmHWM) so far, bytes. */
  agentPeak: number;
  /** Highest sum of the descendants' VmRSS seen in one sample, bytes (shared libraries counted in each). */
  childrenPeak: number;
  /** Highest agent VmRSS + descendants' VmRSS seen in one sample, bytes. */
  totalPeak: number;
  /** Samples taken, and how many found at least one descendant. */
  samples: number;
  samplesWithChildren: number;
}

export interface AgentCpu {
  /** The agent process itself, ms. */
  agent: number;
  /** Its children it has reaped (smbclient runs that ended), ms. */
  children: number;
}

export interface RunningAgent {
  readonly pid: number;
  readonly logFile: string;
  /** performance.now() when it was spawned, and when /healthz first answered. */
  readonly spawnedAt: number;
  readonly healthyAt: number;
  cpu(): AgentCpu;
  /** Memory seen since start; takes one more sample first. */
  memory(): MemorySample;
  /** SIGTERM, SIGKILL after a timeout; resolves with the exit code (null when killed by a signal). */
  stop(): Promise<number | null>;
}

async function healthz(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://${LOOPBACK}:${port}/healthz`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Starts `bin/smbfleet agent --config FILE`; resolves once /healthz answers 200. Logs go to a file beside the config. */
export async function startAgentProcess(configFile: string, httpPort: number): Promise<RunningAgent> {
  const logFile = join(dirname(configFile), "agent.log");
  const log = openSync(logFile, "w");
  const spawnedAt = performance.now();
  let child: ChildProcess;
  try {
    child = spawn(LAUNCHER, ["agent", "--config", configFile], {
      // bin/smbfleet runs `node` from the PATH: the same Node as this benchmark.
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env["PATH"] ?? ""}` },
      stdio: ["ignore", log, log],
    });
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${LAUNCHER} did not start`);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;

  const mem: MemorySample = {
    agentPeak: 0,
    childrenPeak: 0,
    totalPeak: 0,
    samples: 0,
    samplesWithChildren: 0,
  };
  const sample = (): void => {
    if (!alive()) return;
    const own = rssBytes(pid);
    const kids = descendants(pid);
    const children = kids.reduce((n, p) => n + rssBytes(p), 0);
    mem.agentPeak = Math.max(mem.agentPeak, peakRssBytes(pid));
    mem.childrenPeak = Math.max(mem.childrenPeak, children);
    mem.totalPeak = Math.max(mem.totalPeak, own + children);
    mem.samples += 1;
    if (kids.length > 0) mem.samplesWithChildren += 1;
  };
  const sampler = setInterval(sample, SAMPLE_MS);

  const stop = async (): Promise<number | null> => {
    if (alive()) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      clearInterval(sampler);
      return code;
    }
    clearInterval(sampler);
    return exited;
  };

  const deadline = performance.now() + START_TIMEOUT_MS;
  while (!(await healthz(httpPort))) {
    if (!alive() || performance.now() > deadline) {
      await stop();
      throw new Error(`smbfleet agent did not answer /healthz on ${httpPort}; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return {
    pid,
    logFile,
    spawnedAt,
    healthyAt: performance.now(),
    cpu: () => ({ agent: cpuMs(pid), children: reapedChildrenCpuMs(pid) }),
    memory: () => {
      sample();
      return { ...mem };
    },
    stop,
  };
}
