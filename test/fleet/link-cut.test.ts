// A site's WAN link cut (through the delay proxy) for a simulated hour, then
// restored. "A simulated hour" is what an agent with 10 targets at a 60 s
// interval produces in one hour: 600 results per agent. They are produced
// quickly by a synthetic producer (the real buffer and sender, in this
// process), stamped one interval apart across the hour before the link comes
// back, as the scheduler would have stamped them. While the link is cut
// nothing reaches HQ; once restored, everything lands exactly once with the
// agent's own timestamps, and what is older than late_after is marked late.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDelayProxy } from "../harness/delay-proxy.ts";
import { LOOPBACK } from "../harness/ports.ts";
import { until } from "../harness/wait.ts";
import { startFleet, type Fleet } from "./fixture.ts";
import { drained, expectExactlyOnce } from "./verify.ts";

const TARGETS = 10;
const INTERVAL_MS = 60_000;
const HOUR_MS = 3_600_000;
/** 10 targets × 60 runs. */
const HOUR_OF_RESULTS = TARGETS * (HOUR_MS / INTERVAL_MS);
/** The aggregator's default [ingest] late_after (s). */
const LATE_AFTER_MS = 120_000;
/** WAN-ish latency each way while the link is up. */
const DELAY_MS = 20;

let fleet: Fleet;
beforeAll(async () => {
  fleet = await startFleet("link_cut");
});
afterAll(async () => {
  await fleet?.close();
});

async function storedCount(agent: string): Promise<number> {
  const [row] = await fleet.sql<
    { n: number }[]
  >`SELECT count(*)::int AS n FROM results WHERE agent_id = ${agent}`;
  return row?.n ?? 0;
}

describe("link cut for a simulated hour", () => {
  it(`buffers ${HOUR_OF_RESULTS} results per agent while cut and delivers each once after`, async () => {
    const agg = await fleet.startAggregator();
    const sites = ["madrid", "rome"];
    const proxies = await Promise.all(
      sites.map(() =>
        startDelayProxy({
          target: { host: LOOPBACK, port: agg.grpcPort },
          delayMs: DELAY_MS,
          spinWindowMs: 0,
        }),
      ),
    );
    for (const p of proxies) fleet.onClose(() => p.stop());
    const agents = await Promise.all(
      sites.map((site, i) =>
        fleet.startAgent({
          site,
          agent: `${site}-01`,
          url: `${proxies[i]!.host}:${proxies[i]!.port}`,
          targets: TARGETS,
        }),
      ),
    );

    // Live first: one round of every target, delivered.
    for (const a of agents) a.produce(TARGETS);
    await Promise.all(agents.map((a) => drained(a)));

    for (const p of proxies) p.cut();
    const cutAt = Date.now();
    const acceptedAtCut = proxies.map((p) => p.connectionsAccepted);
    const before = await Promise.all(agents.map((a) => storedCount(a.agent)));
    // The hour the link was down: round r of every target started at (start of the hour) + r·interval.
    for (const a of agents) {
      a.produce(
        HOUR_OF_RESULTS,
        (i) => cutAt - HOUR_MS + Math.floor((i - TARGETS) / TARGETS) * INTERVAL_MS + (i % TARGETS) * 1_000,
      );
    }
    // The agents retry against the cut link (each retry is reset); nothing gets through.
    await until(
      "each agent to retry the cut link twice",
      () => proxies.every((p, i) => p.connectionsAccepted >= acceptedAtCut[i]! + 2),
      { detail: () => proxies.map((p) => p.connectionsAccepted) },
    );
    for (const [i, a] of agents.entries()) {
      expect(a.shipper.connected()).toBe(false);
      expect(a.buffer.backlog().count).toBe(HOUR_OF_RESULTS);
      expect(await storedCount(a.agent)).toBe(before[i]);
    }

    for (const p of proxies) p.restore();
    await Promise.all(agents.map((a) => drained(a, 30_000)));

    for (const a of agents) {
      const stored = await expectExactlyOnce(fleet.sql, a);
      expect(stored.rows).toBe(TARGETS + HOUR_OF_RESULTS);
      const [span] = await fleet.sql<{ first: Date; last: Date; late: number }[]>`
        SELECT min(started_at) AS first, max(started_at) AS last, count(*) FILTER (WHERE late)::int AS late
        FROM results WHERE agent_id = ${a.agent} AND received_at > ${new Date(cutAt)}`;
      // The agent's timestamps, not the arrival time: the hour is still an hour at HQ.
      expect(span!.first.getTime()).toBe(cutAt - HOUR_MS);
      expect(span!.last.getTime() - span!.first.getTime()).toBe(
        HOUR_MS - INTERVAL_MS + (TARGETS - 1) * 1_000,
      );
      // Older than late_after on arrival: all but the last couple of rounds.
      const lateRounds = Math.floor((HOUR_MS - LATE_AFTER_MS) / INTERVAL_MS);
      expect(span!.late).toBeGreaterThanOrEqual((lateRounds - 1) * TARGETS);
      expect(span!.late).toBeLessThanOrEqual(HOUR_OF_RESULTS);
    }
  });
});
