// The sequential probe runs behind figures (a) and (b): warm-up runs, then
// RUNS runs one after another, each one smbclient session, with the agent's
// CPU and its smbclients' CPU accounted per run and tcpdump capturing the
// Samba port throughout.
import { join } from "node:path";
import { createSmbCheck } from "../../agent/checks/smb/check.ts";
import { createAgentMetrics } from "../../agent/metrics/agent-metrics.ts";
import { recordResult } from "../../agent/metrics/record-result.ts";
import { silentLogger } from "../../shared/logger.ts";
import type { ProbeResult } from "../../shared/result.ts";
import type { SambaServer } from "../../test/harness/samba.ts";
import { makeTarget } from "../../test/harness/targets.ts";
import { startCapture } from "../../test/harness/pcap.ts";
import { childrenCpuMs, selfCpuMs } from "./cpu.ts";

/** JIT and smbd's first-connection caches: not measured (their sessions are skipped in the capture too). */
export const WARMUP_RUNS = 3;

export interface SequentialRuns {
  runs: number;
  results: ProbeResult[];
  /** CPU ms summed over the measured runs. */
  agentMs: number;
  smbclientMs: number;
  /** The capture of warm-up and measured runs, in order. */
  pcap: string;
}

export async function sequentialRuns(samba: SambaServer, dir: string, runs: number): Promise<SequentialRuns> {
  const pcap = join(dir, "runs.pcap");
  const capture = await startCapture(samba.port, pcap);
  try {
    const check = createSmbCheck({ agentId: "bench", logger: silentLogger() });
    const metrics = createAgentMetrics({ site: "bench", agentId: "bench", version: "bench" });
    const target = makeTarget(samba, { name: "bench" });
    const signal = new AbortController().signal;
    for (let i = 0; i < WARMUP_RUNS; i++) await check.run(target, signal);
    let agentMs = 0;
    let smbclientMs = 0;
    const results: ProbeResult[] = [];
    for (let i = 0; i < runs; i++) {
      const a0 = selfCpuMs();
      const c0 = childrenCpuMs();
      const r = await check.run(target, signal);
      recordResult(metrics, r);
      agentMs += selfCpuMs() - a0;
      smbclientMs += childrenCpuMs() - c0;
      results.push(r);
    }
    return { runs, results, agentMs, smbclientMs, pcap };
  } finally {
    await capture.stop();
  }
}
