// Loopback ports and process helpers shared by every server the test harness
// starts (Samba, the delay proxy, later PostgreSQL and Redis).
import { spawnSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { processAlive } from "../../shared/process-alive.ts";

export const LOOPBACK = "127.0.0.1";

/** How often waitForPort retries a refused connection: short, loopback answers in microseconds. */
const PORT_POLL_MS = 20;

/**
 * A port that was free a moment ago. Another process may take it before the
 * caller binds it, so callers that start a server retry with a new port when
 * the bind fails (startSamba does).
 */
export async function freePort(host: string = LOOPBACK): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("freePort: no TCP address");
  return address.port;
}

/** One file per reserved port, holding the reserving pid; shared by every test process on the machine. */
const RESERVATIONS_DIR = join(tmpdir(), "smbfleet-reserved-ports");
/** Reserved ports are drawn from this many ports just below the kernel's ephemeral range. */
const RESERVED_SPAN = 8_000;
/** Tries before giving up: each fails only if the port is locked or in use, rare in a span this wide. */
const RESERVE_ATTEMPTS = 200;

export interface ReservedPort {
  readonly port: number;
  /** Lets other test processes choose the port again; also done when this process exits. */
  release(): void;
}

const held = new Set<number>();
let releaseHookInstalled = false;

/**
 * A port for a server that is stopped and started again on the same port
 * (PostgreSQL in an outage test, an aggregator restarted after SIGKILL),
 * kept for it while it is down. freePort()'s ports come from the kernel's
 * ephemeral range, where any listen(0) or outgoing connection on the machine
 * may take the port in the meantime and the restart fails to bind. A
 * reserved port lies just below that range, which the kernel never hands
 * out, and a lock file keeps other test processes sharing the machine from
 * choosing it until release() or this process's exit. Servers should still
 * retry a failed bind (a process outside the harness may bind any port).
 */
export async function reservePort(host: string = LOOPBACK): Promise<ReservedPort> {
  const low = ephemeralLow();
  const from = Math.max(1024, low - RESERVED_SPAN);
  mkdirSync(RESERVATIONS_DIR, { recursive: true });
  installReleaseHook();
  for (let attempt = 0; attempt < RESERVE_ATTEMPTS; attempt++) {
    const port = from + randomInt(low - from);
    if (held.has(port) || !lock(port)) continue;
    if (await canListen(host, port)) {
      held.add(port);
      return {
        port,
        release() {
          if (held.delete(port)) unlock(port);
        },
      };
    }
    unlock(port);
  }
  throw new Error(`reservePort: no free port in ${from}-${low - 1} after ${RESERVE_ATTEMPTS} tries`);
}

function ephemeralLow(): number {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    const n = Number(low);
    if (Number.isInteger(n) && n > 1024) return n;
  } catch {
    // not Linux: assume its default range
  }
  return 32_768;
}

/** Creates the port's lock file, taking over one whose owner is dead; false if a live process holds it. */
function lock(port: number): boolean {
  const file = join(RESERVATIONS_DIR, String(port));
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(file, String(process.pid), { flag: "wx" });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number(readProcFile(file));
    if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) return false;
    try {
      unlinkSync(file); // left by a process that died without releasing it
    } catch {
      // another process took it over first; the next write decides
    }
  }
  return false;
}

function unlock(port: number): void {
  try {
    unlinkSync(join(RESERVATIONS_DIR, String(port)));
  } catch {
    // already gone
  }
}

/**
 * Once per process: unlock on exit, and remove lock files whose owner died
 * without releasing (a test worker killed by its runner runs no exit hook).
 */
function installReleaseHook(): void {
  if (releaseHookInstalled) return;
  releaseHookInstalled = true;
  for (const name of readdirSync(RESERVATIONS_DIR)) {
    const owner = Number(readProcFile(join(RESERVATIONS_DIR, name)));
    if (Number.isInteger(owner) && owner > 0 && !processAlive(owner)) unlock(Number(name));
  }
  process.once("exit", () => {
    for (const port of held) unlock(port);
  });
}

async function canListen(host: string, port: number): Promise<boolean> {
  const server = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => server.close(() => resolve()));
  return ok;
}

/** Resolves true once a TCP connect to host:port succeeds, false when timeoutMs passes or stillAlive() turns false. */
export async function waitForPort(
  host: string,
  port: number,
  timeoutMs: number,
  stillAlive: () => boolean = () => true,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && stillAlive()) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host, port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return true;
    await sleep(PORT_POLL_MS);
  }
  return false;
}

/**
 * Bytes the kernel holds in the queues of established TCP connections to or
 * from port (`ss`): 0 once both ends have read everything sent so far, e.g.
 * every message a test wrote has reached the server's process.
 */
export function queuedBytes(port: number): number {
  const ss = spawnSync("ss", ["-tnH", "state", "established", `( sport = :${port} or dport = :${port} )`], {
    encoding: "utf8",
  });
  if (ss.status !== 0) throw new Error(`ss failed (${ss.status ?? ss.signal}): ${ss.stderr}`);
  let bytes = 0;
  for (const line of ss.stdout.split("\n")) {
    const [recvQ, sendQ] = line.trim().split(/\s+/);
    if (recvQ !== undefined && recvQ !== "") bytes += Number(recvQ) + Number(sendQ);
  }
  return bytes;
}

/** Pids of every live process whose process group is pgid (read from /proc). */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcFile(`/proc/${entry}/stat`);
    if (stat === null) continue;
    // Field 5 is the pgrp; the command name (field 2) may hold spaces and ')' so split after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const state = fields[0];
    if (Number(fields[2]) === pgid && state !== "Z" && state !== "X") members.push(Number(entry));
  }
  return members;
}

/** Direct and indirect children of pid that are still alive (not zombies). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcFile(`/proc/${entry}/stat`);
    if (stat === null) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") continue;
    const ppid = Number(fields[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length > 0) {
    const next = stack.pop()!;
    out.push(next);
    stack.push(...(children.get(next) ?? []));
  }
  return out;
}

/** argv of a process as NUL-separated parts, or null if it is gone or unreadable. */
export function processArgv(pid: number): string[] | null {
  const raw = readProcFile(`/proc/${pid}/cmdline`);
  if (raw === null) return null;
  return raw.split("\0").filter((part) => part.length > 0);
}

/** Live processes (not zombies) whose argv satisfies match, e.g. every smbclient talking to one port. */
export function findProcesses(match: (argv: string[]) => boolean): { pid: number; argv: string[] }[] {
  const found: { pid: number; argv: string[] }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const argv = processArgv(pid);
    if (argv === null || argv.length === 0 || !match(argv)) continue;
    const stat = readProcFile(`/proc/${pid}/stat`);
    const state = stat?.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state !== undefined && state !== "Z" && state !== "X") found.push({ pid, argv });
  }
  return found;
}

/** smbclient processes (and the stdbuf that execs it) aimed at port, as the probe engine starts them. */
export function smbclientProcesses(port: number): { pid: number; argv: string[] }[] {
  return findProcesses((argv) => argv.some((a) => a.endsWith("smbclient")) && argv.includes(String(port)));
}

function readProcFile(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    // The process exited between readdir and read; that is normal.
    return null;
  }
}

/**
 * SIGTERM a whole process group, then SIGKILL it after graceMs, and wait until
 * /proc shows none of it alive (bounded by waitMs). Returns the pids still alive.
 */
export async function killProcessGroup(pgid: number, graceMs: number, waitMs = 5_000): Promise<number[]> {
  signalGroup(pgid, "SIGTERM");
  const deadline = performance.now() + waitMs;
  let killed = false;
  const termUntil = performance.now() + graceMs;
  for (;;) {
    const alive = processGroupMembers(pgid);
    if (alive.length === 0) return [];
    if (performance.now() > deadline) return alive;
    if (!killed && performance.now() >= termUntil) {
      signalGroup(pgid, "SIGKILL");
      killed = true;
    }
    await sleep(PORT_POLL_MS);
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}
