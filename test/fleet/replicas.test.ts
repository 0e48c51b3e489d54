// Two aggregator replicas on one database behind one address (a TCP
// round-robin/failover proxy, as a load balancer would be). The replicas
// start at the same moment (migrations must not race). One replica at a time
// is SIGKILLed, several times, alternating, so the agents' streams move from
// one replica to the other and back while they keep producing; a killed
// replica comes back before the other one goes. Every result is stored once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFailoverProxy } from "./failover-proxy.ts";
import { until } from "../harness/wait.ts";
import { startFleet, type Fleet } from "./fixture.ts";
import { drained, expectExactlyOnce, progress } from "./verify.ts";

const MOVES = 4;
const AGENTS = ["paris-01", "paris-02", "berlin-01", "tokyo-01"];

let fleet: Fleet;
beforeAll(async () => {
  fleet = await startFleet("replicas");
});
afterAll(async () => {
  await fleet?.close();
});

describe("two aggregator replicas behind one address", () => {
  it(`agents move between them ${MOVES} times; every result stored exactly once`, async () => {
    const replicas = await Promise.all([fleet.startAggregator(), fleet.startAggregator()]);
    const proxy = await startFailoverProxy(replicas.map((r) => ({ host: "127.0.0.1", port: r.grpcPort })));
    fleet.onClose(() => proxy.stop());
    const agents = await Promise.all(
      AGENTS.map((agent) => fleet.startAgent({ site: agent.split("-")[0]!, agent, url: proxy.url })),
    );
    // 100 results/s per agent, bounded to 90 s.
    for (const a of agents) a.startProducing(10, 100, 900);
    await progress(agents, 200);
    // Round-robin spread the first connections over both replicas.
    expect(proxy.openTo(0) + proxy.openTo(1)).toBe(AGENTS.length);
    expect(proxy.openTo(0)).toBeGreaterThan(0);
    expect(proxy.openTo(1)).toBeGreaterThan(0);

    for (let move = 0; move < MOVES; move++) {
      const victim = move % 2;
      const other = 1 - victim;
      await replicas[victim]!.kill("SIGKILL");
      // Every agent is now streaming through the survivor, and getting acks from it.
      await until(
        `move ${move}: every agent reconnected to replica ${other}`,
        () => proxy.openTo(other) >= AGENTS.length && agents.every((a) => a.shipper.connected()),
        {
          timeoutMs: 20_000,
          detail: () => ({
            openTo: proxy.openTo(other),
            connected: agents.map((a) => a.shipper.connected()),
          }),
        },
      );
      await progress(agents, 200);
      // restart() resolves once the replica answers /readyz and gRPC: the next move may land on it.
      await replicas[victim]!.restart();
    }
    for (const a of agents) a.stopProducing();
    await Promise.all(agents.map((a) => drained(a)));

    expect(proxy.refused).toBe(0);
    expect(proxy.routed[0]).toBeGreaterThanOrEqual(AGENTS.length);
    expect(proxy.routed[1]).toBeGreaterThanOrEqual(AGENTS.length);
    for (const a of agents) {
      expect(a.shipper.status().connects).toBeGreaterThanOrEqual(MOVES);
      await expectExactlyOnce(fleet.sql, a);
    }
  });
});
