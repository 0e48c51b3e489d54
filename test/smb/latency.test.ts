// Reported latency is true, not inflated. Issue 2, acceptance 4.
//
// 1. On loopback the reported medians of write, ls_dir, read and unlink are below 5 ms.
// 2. With D ms added each way by the delay proxy, each operation's median rises by
//    k·2·D ± 2 ms, k being the operation's number of SMB round trips.
//
// k was counted once from a capture: tcpdump -i lo on smbd's port during one
// probe run (smbclient 4.17.12, smbd 4.17.12, SMB3.1.1), SMB2 headers decoded
// from the pcap and client requests grouped into flights (requests sent before
// the next response arrives). smbclient sends no compound and no pipelined
// requests here, so every request is its own round trip:
//   write  (put 4 KiB) CREATE, WRITE, CLOSE                                      k = 3
//   ls_dir (ls)        CREATE, QUERY_DIRECTORY ×2, CLOSE, then the free-space
//                      line: CREATE, QUERY_INFO, CLOSE                           k = 7
//   read   (get 4 KiB) CREATE, QUERY_INFO, READ, CLOSE                           k = 4
//   unlink (rm)        CREATE dir, QUERY_DIRECTORY, CREATE file (delete on
//                      close), CLOSE, QUERY_DIRECTORY, CLOSE                     k = 6
//   (login: NEGOTIATE, SESSION_SETUP ×2, TREE_CONNECT, IOCTL, TREE_DISCONNECT,
//    TREE_CONNECT = 7; rename 3; mkdir 2; rmdir 3 — not asserted here)
// The same k follow from the timings: (median at D − median at 0) / 2D came out
// 3.05–3.1, 7.1–7.2, 4.05–4.1 and 6.1–6.2.
//
// Why the baseline is the proxy at 10 ms and not at 0: every round trip
// through a delayed path costs more than 2·D on these 2-vCPU VMs, because the
// processes on it (proxy, smbd, smbclient) go idle while they wait and their
// vCPUs halt (cpuidle haltpoll, guest_halt_poll_ns = 0); waking them is real
// latency that any delayed network has, but it is not D. Measured per round
// trip beyond 2·D: ~0.3 ms at D = 2, ~0.5 ms at 5, then flat at 0.7–1.1 ms
// from 10 to 30 ms. At D = 0 nobody sleeps between round trips, so from a
// 0 ms baseline k·~1 ms (7 ms for ls_dir) would be charged to D. From a 10 ms
// baseline, where that cost is already paid in full, the rise is k·2·D. The
// raw excess over a 0 ms baseline is logged too.
//
// On a machine shared with other work, interference only ever adds time, so
// each figure is the lowest of several runs' medians.
import { setPriority, getPriority } from "node:os";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createSmbCheck } from "../../agent/checks/smb/check.ts";
import {
  buildInvocation,
  makeRunDir,
  removeRunDir,
  writeAuthFile,
} from "../../agent/checks/smb/invocation.ts";
import { SmbclientSession } from "../../agent/checks/smb/session.ts";
import { median } from "../../shared/result.ts";
import { startDelayProxy, type DelayProxy } from "../harness/delay-proxy.ts";
import { startSamba, type SambaServer } from "../harness/samba.ts";
import { makeTarget } from "../harness/targets.ts";

const ROUND_TRIPS = { write: 3, ls_dir: 7, read: 4, unlink: 6 } as const;
type TimedOp = keyof typeof ROUND_TRIPS;
const OPS = Object.keys(ROUND_TRIPS) as TimedOp[];

const LOOPBACK_BOUND_MS = 5;
const TOLERANCE_MS = 2;
const BASE_DELAY_MS = 10;
const ADDED_DELAYS_MS = [10, 25];
/** Runs per setting and round; the figure is the lowest run median (see above). */
const RUNS = { loopback: 5, base: 6, added: 3 } as const;
/** A busy machine can spoil a round; further rounds add runs (~35 s each). */
const MAX_ROUNDS = 3;
/** Delimiter-only commands timed to measure what the delimiter itself costs. */
const DELIMITER_SAMPLES = 300;

let samba: SambaServer;
let proxy: DelayProxy;
let savedPriority = 0;
const check = createSmbCheck({ agentId: "itest-latency" });

beforeAll(async () => {
  // Other work on this machine delays wake-ups by milliseconds; raising this
  // process's priority (inherited by smbd, the proxy and every smbclient,
  // all started from here) keeps those out of the figures. Needs root; without
  // it the test still runs, only noisier.
  savedPriority = getPriority();
  try {
    setPriority(-10);
  } catch {
    // not permitted: run at normal priority
  }
  samba = await startSamba();
  proxy = await startDelayProxy({ target: { host: samba.host, port: samba.port } });
});

afterAll(async () => {
  await proxy?.stop();
  await samba?.stop();
  try {
    setPriority(savedPriority);
  } catch {
    // lowering back needs no privilege; nothing to do if it fails
  }
});

/** The lowest per-run median of each operation over runs runs. */
async function medians(port: number, runs: number): Promise<Record<TimedOp, number>> {
  const best = Object.fromEntries(OPS.map((op) => [op, Number.POSITIVE_INFINITY])) as Record<TimedOp, number>;
  for (let i = 0; i < runs; i++) {
    const r = await check.run(makeTarget(samba, { port }), new AbortController().signal);
    expect(r.failureMessage).toBeNull();
    for (const o of r.operations) {
      if (!(o.operation in ROUND_TRIPS)) continue;
      const op = o.operation as TimedOp;
      best[op] = Math.min(best[op], median(o.samplesMs)!);
    }
  }
  return best;
}

const fmt = (ms: number) => ms.toFixed(2).padStart(7);

it("reports loopback medians below 5 ms, and a delimiter that costs a few hundredths of a millisecond", async () => {
  await medians(samba.port, 1); // warm smbd and the page cache
  const loopback = await medians(samba.port, RUNS.loopback);
  console.log(`loopback medians (ms): ${OPS.map((op) => `${op} ${loopback[op].toFixed(2)}`).join(", ")}`);
  for (const op of OPS) expect(loopback[op], op).toBeLessThan(LOOPBACK_BOUND_MS);

  // The delimiter is all our timing adds to a command: time it alone (an empty command line).
  const target = makeTarget(samba);
  const dir = await makeRunDir(samba.dir);
  try {
    const authFile = await writeAuthFile(dir, target.username);
    const inv = buildInvocation(
      target,
      { stdbuf: "/usr/bin/stdbuf", smbclient: "/usr/bin/smbclient", authFile },
      process.env,
    );
    const session = new SmbclientSession(
      { ...inv, maxOutputBytesPerCommand: 1 << 20, killGraceMs: 200 },
      10_000,
      new AbortController().signal,
    );
    expect((await session.login()).status).toBe("ok");
    const samples: number[] = [];
    for (let i = 0; i < DELIMITER_SAMPLES; i++) {
      const o = await session.exec("", 1_000);
      expect(o.status).toBe("ok");
      samples.push(o.elapsedMs);
    }
    await session.quit(2_000);
    const cost = median(samples)!;
    console.log(`delimiter alone: median ${cost.toFixed(3)} ms over ${DELIMITER_SAMPLES}`);
    // Negligible next to the ±2 ms this acceptance allows, and next to every operation.
    expect(cost).toBeLessThan(0.5);
    for (const op of OPS) expect(cost, op).toBeLessThan(loopback[op]);
  } finally {
    await removeRunDir(dir);
  }
}, 60_000);

it("rises by k·2·D ± 2 ms per operation with D ms added each way", async () => {
  const settings = [0, BASE_DELAY_MS, ...ADDED_DELAYS_MS.map((d) => BASE_DELAY_MS + d)];
  const runsPerRound = (delay: number) =>
    delay === 0 ? RUNS.loopback : delay === BASE_DELAY_MS ? RUNS.base : RUNS.added;
  const best = new Map<number, Record<TimedOp, number>>();
  proxy.setDelay(0);
  await medians(proxy.port, 1);
  let failures: string[] = [];
  // More runs only ever lower a lowest-median figure towards the true one; a
  // wrong k or time that smbfleet added would survive every extra round.
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    for (const delay of settings) {
      proxy.setDelay(delay);
      const m = await medians(proxy.port, runsPerRound(delay));
      const prev = best.get(delay);
      best.set(
        delay,
        prev === undefined
          ? m
          : (Object.fromEntries(OPS.map((op) => [op, Math.min(prev[op], m[op])])) as Record<TimedOp, number>),
      );
    }
    const c = compare(best);
    failures = c.failures;
    console.log(`round ${round}\n${c.table}`);
    if (failures.length === 0) break;
  }
  expect(failures).toEqual([]);
}, 300_000);

function compare(best: Map<number, Record<TimedOp, number>>): { failures: string[]; table: string } {
  const zero = best.get(0)!;
  const base = best.get(BASE_DELAY_MS)!;
  const failures: string[] = [];
  const rows = OPS.map((op) => {
    let row = `${op.padEnd(7)} k=${ROUND_TRIPS[op]}  0 ms ${fmt(zero[op])}  ${BASE_DELAY_MS} ms ${fmt(base[op])}`;
    for (const added of ADDED_DELAYS_MS) {
      const m = best.get(BASE_DELAY_MS + added)![op];
      const expected = ROUND_TRIPS[op] * 2 * added;
      const rise = m - base[op];
      // From the 0 ms baseline instead, what is left beyond k·2·(all delay) is the wake-up cost.
      const excessFromZero = m - zero[op] - ROUND_TRIPS[op] * 2 * (BASE_DELAY_MS + added);
      row += ` | D=${added}: ${fmt(m)} rise ${fmt(rise)} vs k·2·D ${expected} (from 0 ms: +${excessFromZero.toFixed(2)})`;
      if (Math.abs(rise - expected) > TOLERANCE_MS) {
        failures.push(
          `${op} D=${added} ms: rose ${rise.toFixed(2)} ms, expected ${expected} ± ${TOLERANCE_MS}`,
        );
      }
    }
    return row;
  });
  return { failures, table: rows.join("\n") };
}
