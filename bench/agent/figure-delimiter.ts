// Figure (d): the end-of-command delimiter alone, next to the cheapest
// operation it is added to (delimiter.ts measures it). The delimiter is all
// smbfleet's timing adds to a command, so it must stay far below any real
// SMB operation.
import { median } from "../../shared/result.ts";
import type { SambaServer } from "../../test/harness/samba.ts";
import type { Verdicts } from "../shared/verdict.ts";
import { delimiterCostMs } from "./delimiter.ts";
import type { SequentialRuns } from "./sequential-runs.ts";

const GOAL_MS = 0.5;
const SAMPLES = 300;

export async function delimiterFigure(
  samba: SambaServer,
  runs: SequentialRuns,
  verdicts: Verdicts,
): Promise<void> {
  const delimiter = await delimiterCostMs(samba, SAMPLES);
  const medians = new Map<string, number[]>();
  for (const r of runs.results) {
    for (const o of r.operations) {
      if (o.operation === "login" || o.operation === "integrity") continue;
      medians.set(o.operation, [...(medians.get(o.operation) ?? []), ...o.samplesMs]);
    }
  }
  const [cheapestOp, cheapestMs] = [...medians]
    .map(([op, xs]) => [op, median(xs)!] as const)
    .sort((x, y) => x[1] - y[1])[0] ?? ["none", Number.NaN];
  console.log(`\n## (d) the end-of-command delimiter alone (${SAMPLES} empty commands in one session)`);
  console.log(`delimiter median: ${delimiter.toFixed(3)} ms (goal < ${GOAL_MS} ms)`);
  console.log(`cheapest operation (baseline): ${cheapestOp} median ${cheapestMs.toFixed(3)} ms`);
  verdicts.add({
    figure: "(d) delimiter median",
    value: `${delimiter.toFixed(3)} ms`,
    baseline: `${cheapestOp} median ${cheapestMs.toFixed(3)} ms`,
    ratio: `${((100 * delimiter) / cheapestMs).toFixed(1)} %`,
    goal: `< ${GOAL_MS} ms and below every operation`,
    holds: delimiter < GOAL_MS && delimiter < cheapestMs,
  });
}
