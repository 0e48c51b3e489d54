// PostgreSQL stopped for 30 s under a live fleet and restarted: the
// aggregator process stays up (same pid) and says it is not ready while the
// database is gone, nothing is acked during the outage, the agents keep
// producing into their buffers, and afterwards every result lands exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOOPBACK } from "../harness/ports.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { until } from "../harness/wait.ts";
import { startFleet, type Fleet } from "./fixture.ts";
import { drained, expectExactlyOnce, progress } from "./verify.ts";

/** The acceptance item's outage. */
const OUTAGE_MS = 30_000;

let fleet: Fleet;
beforeAll(async () => {
  fleet = await startFleet("db_outage");
});
afterAll(async () => {
  await fleet?.close();
});

async function readyStatus(httpPort: number): Promise<number> {
  const res = await fetch(`http://${LOOPBACK}:${httpPort}/readyz`, { signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  return res.status;
}

describe("PostgreSQL stopped for 30 s", () => {
  it("acks nothing while it is down, and stores everything exactly once after", async () => {
    const agg = await fleet.startAggregator();
    const pid = agg.pid;
    const agents = await Promise.all(
      ["paris-01", "lyon-01"].map((agent) =>
        fleet.startAgent({ site: agent.split("-")[0]!, agent, url: agg.url }),
      ),
    );
    // 100 results/s per agent, bounded to 90 s.
    for (const a of agents) a.startProducing(10, 100, 900);
    await progress(agents, 500);

    await fleet.pg.stopServer();
    const down = Date.now();
    // Acks of batches committed just before the stop may still be on their way;
    // once every stream has ended none can come, and no new stream is welcomed
    // without the database.
    await until("every agent's stream to end", () => agents.every((a) => !a.shipper.connected()), {
      detail: () => agents.map((a) => a.shipper.status()),
    });
    const ackedAtOutage = agents.map((a) => a.shipper.status().ackedSeq);
    const producedAtOutage = agents.map((a) => a.committed.size);
    await until("/readyz to say 503", async () => (await readyStatus(agg.httpPort)) === 503);

    // The outage itself: the scenario's length, not a wait for something to happen.
    await sleep(OUTAGE_MS - (Date.now() - down));
    // Nothing was acked without a database to commit to; production went on.
    expect(agents.map((a) => a.shipper.status().ackedSeq)).toEqual(ackedAtOutage);
    agents.forEach((a, i) => expect(a.committed.size).toBeGreaterThan(producedAtOutage[i]! + 2_000));
    expect(agg.running()).toBe(true);

    await fleet.pg.startServer();
    await until(
      "/readyz to say 200 after PostgreSQL came back",
      async () => (await readyStatus(agg.httpPort)) === 200,
      { pollMs: 200 },
    );
    // Acks flow again, for results produced during the outage and after it.
    await progress(agents, 200);
    for (const a of agents) a.stopProducing();
    await Promise.all(agents.map((a) => drained(a)));

    expect(agg.pid).toBe(pid);
    for (const a of agents) await expectExactlyOnce(fleet.sql, a);
  });
});
