// The aggregator SIGKILLed mid-stream three times (restarted each time on the
// same port) while three agents keep producing: batches in flight when it
// dies are unacked or acked-but-the-ack-lost, and both must end as exactly
// one row each in PostgreSQL. Agents: the real buffer and sender in this
// process, fed ~600 synthetic results/s in all, each with a unique marker.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../harness/wait.ts";
import { startFleet, type Fleet } from "./fixture.ts";
import { drained, expectExactlyOnce, progress } from "./verify.ts";

const KILLS = 3;
/** Per agent: 20 results every 100 ms (200/s), bounded to 60 s of production. */
const PER_TICK = 20;
const TICK_MS = 100;
const MAX_TICKS = 600;
/** Three of the sender's 500-result batches. */
const BURST = 1_500;

let fleet: Fleet;
beforeAll(async () => {
  fleet = await startFleet("aggregator_kill");
});
afterAll(async () => {
  await fleet?.close();
});

describe("aggregator SIGKILLed mid-stream", () => {
  it(`${KILLS} kills and restarts on the same port: every committed result stored exactly once`, async () => {
    const agg = await fleet.startAggregator();
    const agents = await Promise.all(
      ["paris-01", "paris-02", "berlin-01"].map((agent) =>
        fleet.startAgent({ site: agent.split("-")[0]!, agent, url: agg.url }),
      ),
    );
    for (const a of agents) a.startProducing(PER_TICK, TICK_MS, MAX_TICKS);

    const pids = [agg.pid];
    const backlogAtKill: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      await progress(agents, 300);
      // Mid-stream: a burst of three batches per agent, and the kill lands as
      // soon as the first of them is acked, with the rest in flight or committing.
      const marks = agents.map((a) => a.buffer.lastSeq());
      for (const a of agents) a.produce(BURST);
      await until(
        "the first batch of the burst acked",
        () => agents.some((a, i) => a.shipper.status().ackedSeq > marks[i]!),
        { pollMs: 1, detail: () => agents.map((a) => a.shipper.status().ackedSeq) },
      );
      await agg.kill("SIGKILL");
      backlogAtKill.push(agents.reduce((n, a) => n + a.buffer.backlog().count, 0));
      // The agents notice, buffer and retry while HQ is gone.
      await until("every agent to notice HQ is gone", () => agents.every((a) => !a.shipper.connected()), {
        detail: () => agents.map((a) => a.shipper.status()),
      });
      await agg.restart();
      pids.push(agg.pid);
    }
    await progress(agents, 300);
    for (const a of agents) a.stopProducing();
    await Promise.all(agents.map((a) => drained(a)));

    expect(new Set(pids).size).toBe(KILLS + 1);
    // The kills met buffered results, not an idle stream.
    for (const b of backlogAtKill) expect(b).toBeGreaterThan(0);
    for (const a of agents) {
      expect(a.shipper.status().connects).toBeGreaterThanOrEqual(KILLS + 1);
      const stored = await expectExactlyOnce(fleet.sql, a);
      expect(stored.rows).toBeGreaterThan(1_000);
    }
    // The high-water mark agrees with the agents' own last seq.
    const hw = await fleet.sql<{ agent_id: string; hw: string }[]>`
      SELECT agent_id, high_water_seq::text AS hw FROM agents ORDER BY agent_id`;
    expect(hw.map((r) => [r.agent_id, Number(r.hw)])).toEqual(
      [...agents].sort((x, y) => x.agent.localeCompare(y.agent)).map((a) => [a.agent, a.buffer.lastSeq()]),
    );
  });
});
