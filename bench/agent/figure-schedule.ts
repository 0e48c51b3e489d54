// Figure (c): the most targets one agent keeps on schedule at a 60 s
// interval on one core. Extrapolated from (a) — 60 s / (agent + smbclient CPU
// per run) — and then checked: the real scheduler with the real check runs a
// compressed schedule at fractions of that figure (schedule.ts). A level
// holds when no slot in its window was missed and the p99 lateness over every
// slot (missed ones included) is within 5 % of the 60 s interval.
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { SambaServer } from "../../test/harness/samba.ts";
import type { Verdicts } from "../shared/verdict.ts";
import { runCompressedSchedule, type ScheduleLevel } from "./schedule.ts";

export const INTERVAL_AT_SITE_SECONDS = 60;
/** Compressed schedule: the same runs per second as N targets at 60 s, with a 10 s interval. */
export const COMPRESSED_INTERVAL_SECONDS = 10;

export interface ScheduleParameters {
  /** Slots counted per level: window / 10 s per target (40 s = 4). */
  windowSeconds: number;
  /** Fractions of the extrapolated figure. */
  loadLevels: readonly number[];
  /** False on a one-core machine: smbd then shares the agent's core. */
  twoCores: boolean;
}

function makeBasedirs(samba: SambaServer, n: number): void {
  for (let i = 0; i < n; i++) {
    const d = join(samba.sharePaths.writable, `t${i}`);
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o777);
  }
}

export async function scheduleFigure(
  samba: SambaServer,
  perRunCpuMs: number,
  p: ScheduleParameters,
  verdicts: Verdicts,
): Promise<void> {
  const extrapolated = Math.floor((INTERVAL_AT_SITE_SECONDS * 1000) / perRunCpuMs);
  console.log(`\n## (c) targets on schedule at a ${INTERVAL_AT_SITE_SECONDS} s interval, one core`);
  console.log(
    `extrapolated (baseline): ${INTERVAL_AT_SITE_SECONDS} s x 1000 / ${perRunCpuMs.toFixed(2)} ms per run ` +
      `(agent + smbclient) = ${extrapolated} targets at 100 % of one core`,
  );
  if (!p.twoCores) console.log("(one core only: smbd shares it, so the check below is pessimistic)");
  console.log(
    `check: ${p.windowSeconds} s window of ${COMPRESSED_INTERVAL_SECONDS} s slots (+ one interval of grace); ` +
      "every slot planned in the window is a sample; a slot whose run never started is missed and late " +
      "(lower bound: until the target's next start or the schedule's end)",
  );
  const levels: ScheduleLevel[] = [];
  for (const load of p.loadLevels) {
    const atSite = Math.floor(extrapolated * load);
    const targets = Math.max(
      1,
      Math.round((atSite * COMPRESSED_INTERVAL_SECONDS) / INTERVAL_AT_SITE_SECONDS),
    );
    const equivalent = Math.round((targets * INTERVAL_AT_SITE_SECONDS) / COMPRESSED_INTERVAL_SECONDS);
    makeBasedirs(samba, targets);
    const l = await runCompressedSchedule({
      samba,
      targets,
      intervalSeconds: COMPRESSED_INTERVAL_SECONDS,
      windowSeconds: p.windowSeconds,
      siteIntervalSeconds: INTERVAL_AT_SITE_SECONDS,
      equivalentTargetsAt60s: equivalent,
    });
    levels.push(l);
    const ms = (n: number): string => `${n.toFixed(0)} ms`;
    console.log(
      `  ${(load * 100).toFixed(0)} % (${targets} targets every ${COMPRESSED_INTERVAL_SECONDS} s = ${equivalent} at 60 s): ` +
        `slots ${l.slots}, started ${l.started}, missed ${l.missed} (skipped ${l.skipped}, never started ${l.notStarted}); ` +
        `lateness over all slots p50 ${ms(l.lagP50Ms)} p99 ${ms(l.lagP99Ms)} max ${ms(l.lagMaxMs)}; ` +
        `run wall p50 ${ms(l.runP50Ms)} p99 ${ms(l.runP99Ms)}, in flight ${l.meanInFlight.toFixed(1)}/${l.maxConcurrentRuns}, ` +
        `core 0 busy ${l.cpuBusyPercent.toFixed(0)} %, results ${l.runs} (${l.unhealthy} unhealthy) ` +
        `-> ${l.onSchedule ? "on schedule" : "FELL BEHIND"}`,
    );
    verdicts.add({
      figure: `(c) ${equivalent} targets at 60 s (${(load * 100).toFixed(0)} %)`,
      value: `missed ${l.missed}/${l.slots}, lateness p99 ${ms(l.lagP99Ms)}`,
      baseline: `extrapolated ${extrapolated}`,
      ratio: (equivalent / extrapolated).toFixed(2),
      goal: `0 missed, p99 ≤ ${ms(l.lagLimitMs)}`,
      holds: l.onSchedule,
    });
  }
  // Levels run in rising order; a level counts only if every level below it held too.
  const firstFailed = levels.findIndex((l) => !l.onSchedule);
  const held = firstFailed === -1 ? levels : levels.slice(0, firstFailed);
  const verified = held.at(-1)?.equivalentTargetsAt60s ?? 0;
  console.log(
    `verified: ${verified} targets at 60 s kept on schedule (highest level held with every level below it; ` +
      `${(verified / extrapolated).toFixed(2)} of the extrapolated ${extrapolated})`,
  );
}
