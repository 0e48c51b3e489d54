// PostgreSQL stopped for 30 s under a live stream and restarted: batches that
// met the outage are not acked (the stream ends UNAVAILABLE), the agent
// reconnects and resends, and in the end every result is stored exactly once.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { until } from "../harness/wait.ts";
import { startIngestFixture, type IngestFixture } from "./fixture.ts";
import { wireResults } from "./results.ts";
import { SimAgent } from "./sim-agent.ts";

/** The acceptance item's outage. */
const OUTAGE_MS = 30_000;

let pg: RunningPostgres;
let fx: IngestFixture;

beforeAll(async () => {
  pg = await startPostgres();
  fx = await startIngestFixture(pg, "outage");
});
afterAll(async () => {
  await fx?.close();
  await pg?.stop();
});

describe("PostgreSQL outage", () => {
  it("ends streams with UNAVAILABLE, acks nothing uncommitted, and loses or duplicates nothing", async () => {
    const total = 20_000;
    const agents = ["paris-01", "paris-02"].map(
      (agent) =>
        new SimAgent({
          site: "paris",
          agent,
          total,
          batchSize: 100,
          window: 4,
          open: () => fx.open(agent, "paris"),
          // Slow enough that the outage lands mid-stream.
          reconnectDelayMs: 500,
          deadlineMs: 110_000,
        }),
    );
    const running = agents.map((a) => a.run());
    // Let the streams get going, then take the database away.
    await until("2,000 results acked per agent", () => agents.every((a) => a.acked >= 2_000), {
      detail: () => agents.map((a) => a.acked),
    });
    await pg.stopServer();
    const down = Date.now();

    // While it is down: a batch on a fresh stream is not acked, and the stream ends UNAVAILABLE.
    const probe = await fx.open("paris-03", "paris");
    probe.send({ kind: { case: "hello", value: { site: "paris", agentId: "paris-03" } } });
    const st = await probe.status;
    expect(st.code).toBe(status.UNAVAILABLE);
    expect(st.details).toMatch(/^database unavailable: /);
    const ackedDuringOutage = agents.map((a) => a.acked);

    // The outage itself: the scenario's length, not a wait for something to happen.
    await sleep(OUTAGE_MS - (Date.now() - down));
    expect(agents.map((a) => a.acked)).toEqual(ackedDuringOutage);
    await pg.startServer();
    await Promise.all(running);

    for (const a of agents) expect(a.reconnects).toBeGreaterThan(0);
    const rows = await fx.sql`
      SELECT agent_id, count(*)::int AS n, count(DISTINCT seq)::int AS d, min(seq) AS lo, max(seq) AS hi
      FROM results GROUP BY agent_id ORDER BY agent_id`;
    expect(rows.map((r) => ({ ...r }))).toEqual([
      { agent_id: "paris-01", n: total, d: total, lo: 1n, hi: BigInt(total) },
      { agent_id: "paris-02", n: total, d: total, lo: 1n, hi: BigInt(total) },
    ]);

    // And a batch sent straight after the restart on a new stream lands.
    const after = await fx.open("paris-03", "paris");
    after.send({ kind: { case: "hello", value: { site: "paris", agentId: "paris-03" } } });
    expect((await after.next()).kind.case).toBe("welcome");
    after.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(5) } } });
    expect((await after.next()).kind.value).toMatchObject({ upToSeq: 5n });
    after.end();
    await after.status;
  });
});
