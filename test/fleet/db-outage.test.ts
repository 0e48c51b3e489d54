// PostgreSQL stopped for 30 s under a live fleet and restarted: the
// aggregator process stays up (same pid) and says it is not ready while the
// database is gone, nothing is acked during the outage, the agents keep
// producing into their buffers, and afterwards every result lands exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOOPBACK } from "../harness/ports.ts";
import { startFleet, sleep, type Fleet } from "./fixture.ts";
import { drained, expectExactlyOnce } from "./verify.ts";

/** The acceptance item's outage. */
const OUTAGE_MS = 30_000;
/** Acks of batches committed just before the stop may still be on their way. */
const SETTLE_MS = 1_000;

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
    while (agents.some((a) => a.shipper.status().ackedResults < 500)) await sleep(20);

    await fleet.pg.stopServer();
    const down = Date.now();
    await sleep(SETTLE_MS);
    const ackedAtOutage = agents.map((a) => a.shipper.status().ackedSeq);
    const producedAtOutage = agents.map((a) => a.committed.size);
    expect(await readyStatus(agg.httpPort)).toBe(503);

    await sleep(OUTAGE_MS - (Date.now() - down));
    // Nothing was acked without a database to commit to; production went on.
    expect(agents.map((a) => a.shipper.status().ackedSeq)).toEqual(ackedAtOutage);
    agents.forEach((a, i) => expect(a.committed.size).toBeGreaterThan(producedAtOutage[i]! + 2_000));
    expect(agg.running()).toBe(true);

    await fleet.pg.startServer();
    const backAt = Date.now();
    while ((await readyStatus(agg.httpPort)) !== 200) {
      if (Date.now() - backAt > 30_000)
        throw new Error("aggregator not ready 30 s after PostgreSQL came back");
      await sleep(200);
    }
    await sleep(1_000);
    for (const a of agents) a.stopProducing();
    await Promise.all(agents.map((a) => drained(a)));

    expect(agg.pid).toBe(pid);
    for (const a of agents) await expectExactlyOnce(fleet.sql, a);
  });
});
