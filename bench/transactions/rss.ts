// What loading node-postgres next to postgres.js costs in memory: the RSS of
// fresh Node processes that load postgres.js alone and both, alternating,
// median of each. Loading, not connecting: a pool's sockets and buffers are
// the same order of size with either driver.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("./rss-child.ts", import.meta.url));
/** A child loads two modules and exits; seconds are plenty even on a loaded box. */
const CHILD_TIMEOUT_MS = 30_000;

export interface RssFigures {
  postgresJs: number;
  both: number;
  /** Per sample, bytes. */
  samples: { postgresJs: number[]; both: number[] };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function childRss(which: "postgres" | "both"): number {
  const r = spawnSync(process.execPath, ["--expose-gc", CHILD, which], {
    encoding: "utf8",
    timeout: CHILD_TIMEOUT_MS,
    maxBuffer: 64 * 1024,
  });
  const rss = Number(r.stdout.trim());
  if (r.status !== 0 || !Number.isFinite(rss) || rss <= 0) {
    throw new Error(`rss-child ${which}: exit ${r.status} ${r.signal ?? ""}: ${r.stderr.slice(0, 2000)}`);
  }
  return rss;
}

export function measureRss(samples: number): RssFigures {
  const postgresJs: number[] = [];
  const both: number[] = [];
  for (let i = 0; i < samples; i++) {
    // Alternate, so that neither always runs on a warmer page cache.
    if (i % 2 === 0) {
      postgresJs.push(childRss("postgres"));
      both.push(childRss("both"));
    } else {
      both.push(childRss("both"));
      postgresJs.push(childRss("postgres"));
    }
  }
  return { postgresJs: median(postgresJs), both: median(both), samples: { postgresJs, both } };
}
