// Reported latency is true, not inflated: each operation's reported time
// grows by exactly its SMB round trips when the network gets slower.
// Issue 2, acceptance 4.
//
// The probe runs through the delay proxy (test/harness/delay-proxy.ts), which
// adds D ms each way, so every SMB round trip costs 2·D more. Runs alternate
// between two delays, D1 and D2, and for each operation
//
//   k = (median at D2 − median at D1) / (2·(D2 − D1))
//
// is how many round trips its reported time contains. It must equal k_wire,
// the round trips counted on the wire, within ±0.2: a timer that started
// early or stopped late, or a hidden extra exchange, would show as k above
// k_wire; a timer that missed part of the operation, as k below it.
//
// k_wire comes from a capture of runs through the proxy (tcpdump on smbd's
// port, SMB2 headers decoded: test/harness/pcap.ts). Requests the client sent
// together count once; a request sent after waiting for a response starts
// another round trip. smbclient 4.17 neither compounds nor pipelines here, so
// k_wire is each operation's request count: write 3, ls_dir 7, read 4,
// unlink 6, login 7 (smbclient's own start-up is in login's time but does not
// depend on D, so it cancels).
//
// Why k and not the rise in ms: every round trip through a delayed path also
// costs a wake-up, because the processes on it (proxy, smbd, smbclient) go
// idle while they wait and their vCPUs halt (cpuidle haltpoll,
// guest_halt_poll_ns = 0 on these VMs). Measured per round trip beyond 2·D:
// ~0.3 ms at D = 2, ~0.5 ms at 5, then flat at 0.7–1.1 ms from 10 to 30 ms.
// Judging a rise as k·2·D ± 2 ms made that cost part of the verdict (ls_dir's
// 7 round trips alone carry up to 7 ms of it), and the test failed on a busy
// machine. Both delays here are ≥ 10 ms, so every round trip pays the wake-up
// at both and it cancels in the difference; what remains is its variation,
// ≤ 0.4 ms per round trip (2.8 ms for ls_dir), against an allowance of
// 0.2 · 2 · (D2 − D1) = 12 ms. D2 = 40 keeps a run under 2.5 s.
//
// Other work on the machine adds far more: with two busy loops beside the
// test, 2–7 ms per round trip, unevenly between the delays (k off by up to
// 0.57), even at nice −10, because smbd runs in a session of its own and
// autogroup scheduling shares the CPU between sessions whatever the nice
// value. So the test runs under SCHED_RR (inherited by smbd, smbclient and
// the proxy, all started from here); under the same load k then came within
// 0.02 of k_wire. It needs root, as the capture does; without it the test
// falls back to nice −10. The proxy does not spin-wait (spinWindowMs 0): a
// busy loop is no thing to run at real-time priority, and setTimeout's up to
// 1 ms of lateness is the same at both delays.
//
// Each figure is the median of RUNS samples per delay (one file per run, so
// one sample of each operation), runs alternating between the delays so that
// any load falls on both alike. If a round misses, more runs are added: a
// wrong k survives any number of runs; noise does not.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { getPriority, setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createSmbCheck } from "../../agent/checks/smb/check.ts";
import { median, type ProbeResult } from "../../shared/result.ts";
import { startDelayProxy, type DelayProxy } from "../harness/delay-proxy.ts";
import { bySession, operationSegments, readExchanges, roundTrips, startCapture } from "../harness/pcap.ts";
import { startSamba, type SambaServer } from "../harness/samba.ts";
import { makeTarget } from "../harness/targets.ts";

const JUDGED = ["login", "write", "ls_dir", "read", "unlink"] as const;
type JudgedOp = (typeof JUDGED)[number];

const D1_MS = 10;
const D2_MS = 40;
const K_TOLERANCE = 0.2;
/** Runs per delay and round: ls_dir has one sample per run, so this is its sample count. */
const RUNS = 10;
const MAX_ROUNDS = 3;
/** Runs captured to count k_wire (at D1, where a dependent request arrives ≥ 2·D1 after its answer). */
const CAPTURED_RUNS = 2;
/**
 * One file per run (smbprobe's 5 add nothing to k, only time): a run is then
 * 27 round trips, ~0.6 s at D1 and ~2.2 s at D2, so a round takes ~30 s.
 */
const FILES = 1;

let samba: SambaServer;
let proxy: DelayProxy;
let dir: string;
let restorePriority = (): void => {};
const check = createSmbCheck({ agentId: "itest-latency" });

/** SCHED_RR for every thread of this process and (inherited) every process it starts; false when not permitted. */
function realTimePriority(): boolean {
  const set = spawnSync("chrt", ["--all-tasks", "--rr", "--pid", "1", String(process.pid)], {
    encoding: "utf8",
  });
  if (set.status !== 0) return false;
  restorePriority = () => {
    spawnSync("chrt", ["--all-tasks", "--other", "--pid", "0", String(process.pid)]);
  };
  return true;
}

beforeAll(async () => {
  if (!realTimePriority()) {
    const saved = getPriority();
    try {
      setPriority(-10);
      restorePriority = () => setPriority(saved);
      console.log("latency test: SCHED_RR not permitted, running at nice -10 (noisier on a busy machine)");
    } catch {
      console.log("latency test: no priority could be raised (noisier on a busy machine)");
    }
  }
  samba = await startSamba();
  proxy = await startDelayProxy({ target: { host: samba.host, port: samba.port }, spinWindowMs: 0 });
  dir = mkdtempSync(join(tmpdir(), "smbfleet-latency-"));
});

afterAll(async () => {
  await proxy?.stop();
  await samba?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  try {
    restorePriority();
  } catch {
    // lowering back needs no privilege; nothing to do if it fails
  }
});

async function runAt(delayMs: number): Promise<ProbeResult> {
  proxy.setDelay(delayMs);
  const r = await check.run(
    makeTarget(samba, { port: proxy.port, fileCount: FILES }),
    AbortSignal.timeout(60_000),
  );
  expect(r.failureMessage).toBeNull();
  return r;
}

/** Round trips per operation, counted in a capture of CAPTURED_RUNS runs; every run must agree. */
async function wireRoundTrips(): Promise<Record<JudgedOp, number>> {
  const file = join(dir, "runs.pcap");
  const capture = await startCapture(samba.port, file);
  const results: ProbeResult[] = [];
  try {
    for (let i = 0; i < CAPTURED_RUNS; i++) results.push(await runAt(D1_MS));
  } finally {
    await capture.stop();
  }
  const sessions = bySession(readExchanges(file));
  expect(sessions).toHaveLength(CAPTURED_RUNS);
  const seen = new Map<JudgedOp, Set<number>>(JUDGED.map((op) => [op, new Set()]));
  results.forEach((r, i) => {
    const ops = r.operations.map((o) => ({ operation: o.operation, count: o.samplesMs.length }));
    for (const segment of operationSegments(sessions[i]!, ops)) {
      seen.get(segment.operation as JudgedOp)?.add(roundTrips(segment.exchanges, D1_MS));
    }
  });
  const counts = Object.fromEntries([...seen].map(([op, set]) => [op, [...set]]));
  for (const op of JUDGED) expect(counts[op], `${op}: round trips in every captured run`).toHaveLength(1);
  return Object.fromEntries(JUDGED.map((op) => [op, counts[op]![0]!])) as Record<JudgedOp, number>;
}

/** Every sample of each operation, at one delay. */
type Samples = Map<string, number[]>;

function add(samples: Samples, r: ProbeResult): void {
  for (const o of r.operations)
    samples.set(o.operation, [...(samples.get(o.operation) ?? []), ...o.samplesMs]);
}

it("each operation's reported time holds exactly its SMB round trips: |k − k_wire| ≤ 0.2", async () => {
  await runAt(0); // warm smbd and the page cache
  const kWire = await wireRoundTrips();
  const at1: Samples = new Map();
  const at2: Samples = new Map();
  let failures: string[] = [];
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    for (let i = 0; i < RUNS; i++) {
      add(at1, await runAt(D1_MS));
      add(at2, await runAt(D2_MS));
    }
    failures = [];
    const rows = JUDGED.map((op) => {
      const m1 = median(at1.get(op) ?? [])!;
      const m2 = median(at2.get(op) ?? [])!;
      const k = (m2 - m1) / (2 * (D2_MS - D1_MS));
      const off = Math.abs(k - kWire[op]);
      if (!(off <= K_TOLERANCE)) failures.push(`${op}: k = ${k.toFixed(3)}, k_wire = ${kWire[op]}`);
      return (
        `${op.padEnd(7)} median ${m1.toFixed(2).padStart(7)} ms at ${D1_MS} ms, ${m2.toFixed(2).padStart(7)} ms at ${D2_MS} ms` +
        `  k ${k.toFixed(3)}  k_wire ${kWire[op]}  |k − k_wire| ${off.toFixed(3)}`
      );
    });
    console.log(`latency round ${round} (${round * RUNS} runs per delay)\n${rows.join("\n")}`);
    if (failures.length === 0) break;
  }
  expect(failures).toEqual([]);
}, 300_000);
