// The share password never appears in any process's argv (/proc/*/cmdline,
// what `ps` shows every user) while smbclient runs. Issue 2, acceptance 3.
//
// A worker thread scans /proc every ~2 ms, on its own event loop, while this
// thread runs probes. The scan proves it can see: it must catch smbclient's
// own argv (so it looked while smbclient was alive) and a decoy process that
// does carry the password in its argv (so a leak would have been caught); the
// decoy lives until the scanner reports it, however slow a busy machine is.
import { spawn } from "node:child_process";
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createSmbCheck } from "../../agent/checks/smb/check.ts";
import { startDelayProxy, type DelayProxy } from "../harness/delay-proxy.ts";
import { startSamba, type SambaServer } from "../harness/samba.ts";
import { makeTarget } from "../harness/targets.ts";
import { until } from "../harness/wait.ts";

const SCAN_INTERVAL_MS = 2;
/** Bounds the scanner whatever happens to the test. */
const SCAN_MAX_MS = 60_000;

const SCANNER = `
const { parentPort, workerData } = require("node:worker_threads");
const { readdirSync, readFileSync } = require("node:fs");
const { needle, port, intervalMs, maxMs } = workerData;
const started = Date.now();
let scans = 0, smbclientSeen = 0;
const leaks = [];
let stop = false;
parentPort.on("message", () => { stop = true; });
function scan() {
  scans++;
  for (const entry of readdirSync("/proc")) {
    if (!/^\\d+$/.test(entry)) continue;
    let raw;
    try { raw = readFileSync("/proc/" + entry + "/cmdline", "latin1"); } catch { continue; }
    const argv = raw.split("\\0");
    if (raw.includes(needle)) {
      if (!leaks.some((l) => l.pid === Number(entry))) parentPort.postMessage({ leak: Number(entry) });
      leaks.push({ pid: Number(entry), argv });
    }
    if (argv.some((a) => a.endsWith("smbclient")) && argv.includes(String(port))) smbclientSeen++;
  }
}
(function loop() {
  if (stop || Date.now() - started > maxMs) {
    parentPort.postMessage({ report: { scans, smbclientSeen, leaks } });
    return;
  }
  scan();
  setTimeout(loop, intervalMs);
})();
`;

interface ScanReport {
  scans: number;
  smbclientSeen: number;
  leaks: { pid: number; argv: string[] }[];
}

let samba: SambaServer;
let proxy: DelayProxy;

beforeAll(async () => {
  samba = await startSamba();
  // A little latency keeps each smbclient alive long enough to be seen many times.
  proxy = await startDelayProxy({ target: { host: samba.host, port: samba.port }, delayMs: 5 });
});

afterAll(async () => {
  await proxy?.stop();
  await samba?.stop();
});

it("the password is in no process's argv while smbclient runs, and the scan would have seen it", async () => {
  const user = samba.users[0]!;
  // Matched as bytes: the whole password, spaces and % included.
  const needle = Buffer.from(user.password, "utf8").toString("latin1");
  const worker = new Worker(SCANNER, {
    eval: true,
    workerData: { needle, port: proxy.port, intervalMs: SCAN_INTERVAL_MS, maxMs: SCAN_MAX_MS },
  });
  const seenLeaks = new Set<number>();
  const report = new Promise<ScanReport>((resolve, reject) => {
    worker.on("message", (m: { leak?: number; report?: ScanReport }) => {
      if (m.leak !== undefined) seenLeaks.add(m.leak);
      if (m.report !== undefined) resolve(m.report);
    });
    worker.once("error", reject);
  });

  const check = createSmbCheck({ agentId: "itest-argv" });
  const target = makeTarget({ ...samba, port: proxy.port }, { username: user.name, password: user.password });
  const results = [];
  for (let i = 0; i < 5; i++) results.push(await check.run(target, new AbortController().signal));
  // And a failing login: the error path must not leak it either.
  results.push(await check.run({ ...target, share: samba.shares.missing }, new AbortController().signal));

  // The decoy: a process that does carry the password in argv, to prove the scan catches one.
  const decoy = spawn("sleep", ["60"], { argv0: `decoy ${user.password}` });
  const decoyExited = new Promise((resolve) => decoy.once("exit", resolve));
  try {
    await until("the scanner to see the decoy", () => seenLeaks.has(decoy.pid!), { timeoutMs: 20_000 });
  } finally {
    decoy.kill();
    await decoyExited;
  }

  worker.postMessage("stop");
  const r = await report;
  await worker.terminate();

  expect(results.slice(0, 5).every((x) => x.healthy)).toBe(true);
  expect(results[5]!.failureClass).toBe("share_not_found");
  expect(r.scans).toBeGreaterThan(50);
  expect(r.smbclientSeen).toBeGreaterThan(0);
  // One leaking process, seen on every scan while it lived: the decoy.
  expect([...new Set(r.leaks.map((l) => l.pid))]).toEqual([decoy.pid]);
}, 90_000);
