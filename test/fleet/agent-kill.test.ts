// An agent SIGKILLed with a backlog, twice: first while its link to HQ is cut
// and thousands of results sit in its buffer, then again while it is draining
// that backlog. Restarted each time on the same buffer file, it drains, and
// PostgreSQL ends up with every seq the buffer ever handed out, each once,
// each with the marker the agent printed when it committed it.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openBuffer } from "../../agent/buffer/buffer.ts";
import { seqRange, storedResults } from "../harness/fleet.ts";
import { startDelayProxy, type DelayProxy } from "../harness/delay-proxy.ts";
import { LOOPBACK } from "../harness/ports.ts";
import type { AgentChildConfig } from "./agent-child.ts";
import { until } from "../harness/wait.ts";
import { startFleet, type Fleet } from "./fixture.ts";

const CHILD = join(import.meta.dirname, "agent-child.ts");
const SITE = "oslo";
const AGENT = "oslo-01";
/** 100 results every 50 ms: ~2,000/s, so seconds of cut link make a backlog of thousands. */
const PER_TICK = 100;
const TICK_MS = 50;

let fleet: Fleet;
beforeAll(async () => {
  fleet = await startFleet("agent_kill");
});
afterAll(async () => {
  await fleet?.close();
});

interface Child {
  proc: ChildProcess;
  /** seq → marker, from the child's "C" lines (each printed after its commit). */
  reported: Map<number, string>;
  exited: Promise<NodeJS.Signals | number | null>;
}

function startChild(config: AgentChildConfig): Child {
  const proc = spawn(process.execPath, [CHILD, JSON.stringify(config)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  fleet.onClose(async () => {
    proc.kill("SIGKILL");
    await exited;
  });
  const reported = new Map<number, string>();
  createInterface({ input: proc.stdout }).on("line", (line) => {
    const [kind, seq, marker] = line.split(" ");
    if (kind === "C" && seq !== undefined && marker !== undefined) reported.set(Number(seq), marker);
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    proc.once("exit", (code, signal) => resolve(signal ?? code)),
  );
  return { proc, reported, exited };
}

async function storedCount(): Promise<number> {
  const [row] = await fleet.sql<
    { n: number }[]
  >`SELECT count(*)::int AS n FROM results WHERE agent_id = ${AGENT}`;
  return row?.n ?? 0;
}

/**
 * What PostgreSQL holds once nothing more of this agent can arrive: the
 * aggregator has ended the cut stream (which empties its queue and clears
 * connected_at) and has no transaction open, so a batch it had already read
 * is committed or gone.
 */
async function storedOnceSettled(): Promise<number> {
  let seen: unknown;
  return until(
    "the aggregator to end the cut stream and finish the batch in hand",
    async () => {
      const [row] = await fleet.sql<{ open: number; busy: number }[]>`
        SELECT (SELECT count(*)::int FROM agents WHERE agent_id = ${AGENT} AND connected_at IS NOT NULL) AS open,
               (SELECT count(*)::int FROM pg_stat_activity
                 WHERE application_name = 'smbfleet-aggregator' AND state <> 'idle') AS busy`;
      seen = row;
      return row?.open === 0 && row.busy === 0 ? storedCount() : null;
    },
    { pollMs: 10, detail: () => ({ streamsOpenAndBusyBackends: seen }) },
  );
}

describe("agent SIGKILLed with a backlog", () => {
  let proxy: DelayProxy;

  it("restarts on its buffer file and drains it: every seq it handed out stored once", async () => {
    const agg = await fleet.startAggregator();
    proxy = await startDelayProxy({
      target: { host: LOOPBACK, port: agg.grpcPort },
      delayMs: 5,
      spinWindowMs: 0,
    });
    fleet.onClose(() => proxy.stop());
    const files = await fleet.pki.agent(SITE, AGENT);
    const base = {
      site: SITE,
      agent: AGENT,
      url: `${proxy.host}:${proxy.port}`,
      ...files,
      dir: join(fleet.dir, "child-agent"),
      perTick: PER_TICK,
      everyMs: TICK_MS,
      maxTicks: 200,
      maxRunMs: 60_000,
    };

    // Run 1: connected at first, then the link is cut while it keeps producing; killed.
    const run1 = startChild({ ...base, run: 1 });
    await until("first rows at HQ", async () => (await storedCount()) > 200);
    proxy.cut();
    // A batch the aggregator had already read may still commit; then nothing more can arrive.
    const atCut = await storedOnceSettled();
    await until("a backlog of thousands", () => run1.reported.size > atCut + 3_000);
    run1.proc.kill("SIGKILL");
    expect(await run1.exited).toBe("SIGKILL");
    expect(await storedCount()).toBe(atCut);

    const left = openBuffer(join(base.dir, `${AGENT}.db`), { maxBytes: 1 << 30, maxAgeSeconds: 86_400 });
    const backlog1 = left.backlog().count;
    const lastSeq1 = left.lastSeq();
    left.close();
    expect(backlog1).toBeGreaterThan(3_000);
    // Everything it said it committed is in the file (or already at HQ).
    expect(lastSeq1).toBeGreaterThanOrEqual(Math.max(...run1.reported.keys()));

    // Run 2: the link is back; killed while it drains the backlog.
    proxy.restore();
    const run2 = startChild({ ...base, run: 2 });
    await until("draining has begun", async () => (await storedCount()) > atCut);
    run2.proc.kill("SIGKILL");
    expect(await run2.exited).toBe("SIGKILL");

    // Run 3: produces a little more, then stops producing; everything drains.
    const run3 = startChild({ ...base, run: 3, maxTicks: 10 });
    await until("run 3 done producing", () => run3.reported.size === 10 * PER_TICK);
    const last = Math.max(...run3.reported.keys());
    await until("everything at HQ", async () => (await storedCount()) === last, 60_000);
    run3.proc.kill("SIGTERM");
    expect(await run3.exited).toBe(0);

    const buffer = openBuffer(join(base.dir, `${AGENT}.db`), { maxBytes: 1 << 30, maxAgeSeconds: 86_400 });
    const final = { lastSeq: buffer.lastSeq(), backlog: buffer.backlog().count, dropped: buffer.dropped() };
    buffer.close();
    expect(final).toEqual({ lastSeq: last, backlog: 0, dropped: 0 });

    const stored = await storedResults(fleet.sql, AGENT);
    expect(stored.rows).toBe(last);
    expect(stored.seqs).toEqual(seqRange(1, last));
    expect(new Set(stored.markers.values()).size).toBe(last);
    const reported = new Map([...run1.reported, ...run2.reported, ...run3.reported]);
    const mismatched = [...reported].filter(([seq, marker]) => stored.markers.get(seq) !== marker);
    expect(mismatched.slice(0, 5)).toEqual([]);
    // Runs 1 and 2 were killed: at most the one result each was committing went unreported.
    expect(reported.size).toBeGreaterThanOrEqual(last - 2);
  });
});
