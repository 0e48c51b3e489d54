// Figure (a): the agent's CPU per probe run next to its smbclients' own CPU
// for the same runs (the baseline); goal: agent ≤ 25 % of smbclient.
import type { Verdicts } from "../shared/verdict.ts";
import { CHILD_CPU_RESOLUTION_MS } from "./cpu.ts";
import type { SequentialRuns } from "./sequential-runs.ts";

const GOAL_RATIO = 0.25;

export function cpuFigure(runs: SequentialRuns, verdicts: Verdicts): { perRunMs: number } {
  const agent = runs.agentMs / runs.runs;
  const smbclient = runs.smbclientMs / runs.runs;
  const ratio = agent / smbclient;
  console.log(`\n## (a) CPU per probe run (${runs.runs} runs, login + 5 write + ls_dir + 5 read + 5 unlink)`);
  console.log(`agent (node, all threads):   ${agent.toFixed(2)} ms`);
  console.log(
    `smbclient (baseline):        ${smbclient.toFixed(2)} ms  (kernel tick ${CHILD_CPU_RESOLUTION_MS} ms, summed over ${runs.runs} runs)`,
  );
  console.log(`ratio agent / smbclient:     ${(100 * ratio).toFixed(1)} %  (goal ≤ ${100 * GOAL_RATIO} %)`);
  const unhealthy = runs.results.filter((r) => !r.healthy).length;
  if (unhealthy > 0) console.log(`warning: ${unhealthy} of ${runs.runs} runs unhealthy`);
  verdicts.add({
    figure: "(a) agent CPU per probe run",
    value: `${agent.toFixed(2)} ms`,
    baseline: `smbclient ${smbclient.toFixed(2)} ms`,
    ratio: `${(100 * ratio).toFixed(1)} %`,
    goal: `≤ ${100 * GOAL_RATIO} % of smbclient`,
    holds: ratio <= GOAL_RATIO,
  });
  return { perRunMs: agent + smbclient };
}
