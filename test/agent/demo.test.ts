// `make demo` end to end, as an operator runs it. The fleet (default): Samba,
// PostgreSQL, the PKI, `smbfleet aggregator` and agents for paris and berlin,
// summarised from the aggregator; once with DEMO_ONCE=1 and once stopped by
// Ctrl-C (SIGINT to its process group, as a terminal sends it). The
// standalone mode: one agent, no aggregator. After each, nothing the demo
// started may be left: no smbd, postgres, smbfleet process or smbclient, no
// temp dir.
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { processArgv } from "../harness/ports.ts";
import { smbclientsFor } from "./processes.ts";

/** Start-up (~5 s here) and the first results (one 5 s interval), with room for a busy 2-core machine; under the 120 s test timeout. */
const DEMO_TIMEOUT_MS = 110_000;
const MARK_ENV = "SMBFLEET_DEMO_TEST_MARK";
const OPS = ["login", "write", "ls_dir", "read", "unlink"];
/** The temp dirs of the demo, its Samba and its PostgreSQL (mkdtemp under os.tmpdir()). */
const TEMP_DIR = new RegExp(
  `${tmpdir().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/smbfleet-(?:demo|samba|pg)-[A-Za-z0-9]+`,
  "g",
);

interface DemoRun {
  status: number | null;
  stdout: string;
  stderr: string;
  mark: string;
}

function runDemo(env: Record<string, string>): DemoRun {
  const mark = randomUUID();
  const r = spawnSync(process.execPath, ["scripts/demo.ts"], {
    encoding: "utf8",
    env: { ...process.env, ...env, [MARK_ENV]: mark },
    timeout: DEMO_TIMEOUT_MS,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, mark };
}

/** Runs the demo until it says it is running, then sends SIGINT to its whole process group. */
async function runDemoUntilCtrlC(): Promise<DemoRun> {
  const mark = randomUUID();
  const child = spawn(process.execPath, ["scripts/demo.ts"], {
    env: { ...process.env, [MARK_ENV]: mark },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let interrupted = false;
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
    // Once: a second Ctrl-C means "kill instead of drain".
    if (!interrupted && stderr.includes("press Ctrl-C to stop")) {
      interrupted = true;
      process.kill(-child.pid!, "SIGINT");
    }
  });
  const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), DEMO_TIMEOUT_MS);
  const status = await new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  clearTimeout(timer);
  return { status, stdout, stderr, mark };
}

/** What the demo's log names: its temp dirs and Samba's port. */
function startedThings(stderr: string): { dirs: string[]; sambaPort: number } {
  const dirs = [...stderr.matchAll(TEMP_DIR)].map((m) => m[0]);
  const port = /Samba listening on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1];
  return { dirs: [...new Set(dirs)], sambaPort: Number(port) };
}

/**
 * Live processes the demo started: any carrying the test's mark in their
 * environment (the node children, smbd, its watchdog), any whose argv or
 * working directory is inside one of its temp dirs (PostgreSQL and its
 * backends, which get a clean environment), and smbclients aimed at its Samba.
 */
function leftovers(run: DemoRun): string[] {
  const { dirs, sambaPort } = startedThings(run.stderr);
  const found: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const argv = processArgv(Number(entry));
    if (argv === null) continue;
    const state = readOrNull(`/proc/${entry}/stat`)?.split(") ")[1]?.[0];
    if (state === "Z" || state === "X") continue;
    const cwd = readlinkOrNull(`/proc/${entry}/cwd`) ?? "";
    const marked = readOrNull(`/proc/${entry}/environ`)?.includes(`${MARK_ENV}=${run.mark}`) === true;
    if (marked || dirs.some((d) => cwd.startsWith(d) || argv.some((a) => a.includes(d)))) {
      found.push(`${entry}: ${argv.join(" ")}`);
    }
  }
  for (const pid of smbclientsFor(sambaPort)) found.push(`${pid}: smbclient`);
  return found;
}

function expectNothingLeft(run: DemoRun): void {
  const { dirs, sambaPort } = startedThings(run.stderr);
  expect(dirs.length, run.stderr).toBeGreaterThanOrEqual(2);
  expect(sambaPort).toBeGreaterThan(0);
  expect(leftovers(run)).toEqual([]);
  for (const d of dirs) expect(existsSync(d), d).toBe(false);
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return null;
  }
}

function readlinkOrNull(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** An op row of a target's table: name, samples, ~median, mean, failed. */
const opRow = (indent: number, op: string, samples: string, failed: string): RegExp =>
  new RegExp(`\\n {${indent}}${op} +${samples} +\\d+\\.\\d\\d +\\d+\\.\\d\\d +${failed}\\n`);

/** The block of one site in the fleet summary: from its header to the next blank line. */
function siteBlock(stdout: string, site: string): string {
  const start = stdout.indexOf(`  site ${site}, agent ${site}-01\n`);
  expect(start, stdout).toBeGreaterThanOrEqual(0);
  const end = stdout.indexOf("\n\n", start);
  return stdout.slice(start, end + 1);
}

function expectFleetSummary(stdout: string): void {
  const paris = siteBlock(stdout, "paris");
  const berlin = siteBlock(stdout, "berlin");
  expect(paris).toContain("\n    //writable: healthy\n");
  expect(paris).toContain("\n    //readonly: UNHEALTHY (access_denied)\n");
  expect(berlin).toContain("\n    //writable: healthy\n");
  expect(berlin).not.toContain("//readonly");
  for (const block of [paris.slice(0, paris.indexOf("//readonly")), berlin]) {
    for (const op of OPS) expect(block).toMatch(opRow(6, op, "[15]", "0"));
  }
  // The read-only share: every write failed, none timed.
  expect(paris).toMatch(/\n {6}write +0 +- +- +5\n/);
  expect(stdout).toMatch(/aggregator {2}metrics: http:\/\/127\.0\.0\.1:\d+\/metrics/);
  expect(stdout).toMatch(/agent paris-01 +metrics: http:\/\/127\.0\.0\.1:\d+\/metrics/);
  expect(stdout).toMatch(/agent berlin-01 +metrics: http:\/\/127\.0\.0\.1:\d+\/metrics/);
  const rows =
    /PostgreSQL {2}postgres:\/\/\S+\/smbfleet {3}results: (\d+) rows \(berlin (\d+), paris (\d+)\)/.exec(
      stdout,
    );
  expect(rows, stdout).not.toBeNull();
  const [total, berlinRows, parisRows] = rows!.slice(1).map(Number) as [number, number, number];
  expect(berlinRows).toBeGreaterThan(0);
  expect(parisRows).toBeGreaterThanOrEqual(2);
  expect(total).toBe(berlinRows + parisRows);
}

function expectCleanStop(stderr: string): void {
  for (const what of ["agent paris-01", "agent berlin-01", "aggregator"]) {
    expect(stderr).toContain(`demo: ${what} stopped (exit 0)`);
  }
  expect(stderr).toContain("demo: PostgreSQL stopped");
  expect(stderr).toContain("demo: Samba stopped");
  expect(stderr).toContain("demo: everything stopped, temp files removed");
}

describe("make demo (fleet)", () => {
  it("DEMO_ONCE=1: both sites at the aggregator, the read-only share UNHEALTHY, rows in PostgreSQL; then nothing left", () => {
    const run = runDemo({ DEMO_ONCE: "1" });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expectFleetSummary(run.stdout);
    expectCleanStop(run.stderr);
    expectNothingLeft(run);
  });

  it("runs until Ctrl-C, then stops everything and exits 0", async () => {
    const run = await runDemoUntilCtrlC();
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stderr).toContain("demo: SIGINT: stopping");
    expectFleetSummary(run.stdout);
    expectCleanStop(run.stderr);
    expectNothingLeft(run);
  });
});

describe("make demo (DEMO_MODE=standalone)", () => {
  it("shows a healthy and an unhealthy target from the agent's own /metrics, then cleans up", () => {
    const run = runDemo({ DEMO_ONCE: "1", DEMO_MODE: "standalone" });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain("//writable: healthy");
    expect(run.stdout).toContain("//readonly: UNHEALTHY (access_denied)");
    for (const op of OPS) expect(run.stdout).toMatch(opRow(4, op, "[15]", "0"));
    expect(run.stdout).toMatch(/metrics: http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(run.stdout).not.toContain("PostgreSQL");
    expect(run.stderr).toContain("demo: agent stopped (exit 0)");
    expect(run.stderr).toContain("demo: Samba stopped, temp files removed");
    expectNothingLeft(run);
  });

  it("refuses an unknown DEMO_MODE before starting anything", () => {
    const run = runDemo({ DEMO_ONCE: "1", DEMO_MODE: "cluster" });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('DEMO_MODE must be one of fleet, standalone; got "cluster"');
    expect(run.stderr).not.toContain("starting");
  });
});
