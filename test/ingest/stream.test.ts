// The ingest stream against a real PostgreSQL: Hello/Welcome, batches stored
// exactly once and acked only after commit, resends skipped, heartbeats,
// late results, and two replicas sharing one database.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { startIngestFixture, startIngestOn, type IngestFixture, type TestStream } from "./fixture.ts";
import { wireResult, wireResults } from "./results.ts";

let pg: RunningPostgres;
let fx: IngestFixture;

beforeAll(async () => {
  pg = await startPostgres();
  fx = await startIngestFixture(pg, "stream");
});
afterAll(async () => {
  await fx?.close();
  await pg?.stop();
});

async function hello(s: TestStream, site: string, agent: string, extra: Record<string, unknown> = {}) {
  s.send({ kind: { case: "hello", value: { site, agentId: agent, agentVersion: "t", ...extra } } });
  const m = await s.next();
  if (m.kind.case !== "welcome") throw new Error(`expected Welcome, got ${m.kind.case}`);
  return m.kind.value;
}

async function count(agent: string): Promise<{ n: number; distinct: number }> {
  const rows = await fx.sql`
    SELECT count(*)::int AS n, count(DISTINCT seq)::int AS distinct FROM results WHERE agent_id = ${agent}`;
  return { n: rows[0]?.["n"] as number, distinct: rows[0]?.["distinct"] as number };
}

describe("ingest stream", () => {
  it("welcomes, stores each batch in one commit and acks only after it", async () => {
    const s = await fx.open("paris-01", "paris");
    const w = await hello(s, "paris", "paris-01", { backlog: 20n, wallClockUnixMs: BigInt(Date.now()) });
    expect(w.highWaterSeq).toBe(0n);

    s.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(10) } } });
    const a1 = await s.next();
    expect(a1.kind).toEqual({ case: "ack", value: expect.objectContaining({ upToSeq: 10n }) as unknown });
    // The Ack means committed: the rows are visible the moment it arrives.
    expect(await count("paris-01")).toEqual({ n: 10, distinct: 10 });

    s.send({ kind: { case: "batch", value: { firstSeq: 11n, results: wireResults(10) } } });
    expect((await s.next()).kind.value).toMatchObject({ upToSeq: 20n });
    const agent =
      await fx.sql`SELECT site, high_water_seq, backlog, connected_at FROM agents WHERE agent_id = 'paris-01'`;
    expect(agent[0]).toMatchObject({ site: "paris", high_water_seq: 20n, backlog: 20n });
    expect(agent[0]?.["connected_at"]).toBeInstanceOf(Date);

    const targets = await fx.sql`SELECT count(*)::int AS n FROM targets WHERE site = 'paris'`;
    expect(targets[0]?.["n"]).toBe(10);

    s.send({
      kind: {
        case: "heartbeat",
        value: { backlog: 3n, dropped: 7n, wallClockUnixMs: BigInt(Date.now() - 2_000) },
      },
    });
    s.end();
    expect((await s.status).code).toBe(status.OK);
    const after =
      await fx.sql`SELECT backlog, dropped, clock_skew_ms FROM agents WHERE agent_id = 'paris-01'`;
    expect(after[0]).toMatchObject({ backlog: 3n, dropped: 7n });
    expect(Number(after[0]?.["clock_skew_ms"])).toBeGreaterThanOrEqual(2_000);
  });

  it("after a reconnect, resent results at or below the high-water mark are skipped and acked", async () => {
    const s = await fx.open("paris-01", "paris");
    expect((await hello(s, "paris", "paris-01")).highWaterSeq).toBe(20n);
    // The agent never saw the Ack for 15..20 (say), so it resends from 15, plus new ones.
    s.send({ kind: { case: "batch", value: { firstSeq: 15n, results: wireResults(11) } } });
    expect((await s.next()).kind.value).toMatchObject({ upToSeq: 25n });
    expect(await count("paris-01")).toEqual({ n: 25, distinct: 25 });
    // An entire resend of what is already stored writes nothing.
    const s2 = await fx.open("paris-01", "paris");
    expect((await hello(s2, "paris", "paris-01")).highWaterSeq).toBe(25n);
    s2.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(25) } } });
    expect((await s2.next()).kind.value).toMatchObject({ upToSeq: 25n });
    expect(await count("paris-01")).toEqual({ n: 25, distinct: 25 });
    s.end();
    s2.end();
    await Promise.all([s.status, s2.status]);
  });

  it("ends a stream that does not open with Hello (FAILED_PRECONDITION) and writes nothing", async () => {
    const s = await fx.open("paris-09", "paris");
    s.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(3) } } });
    const st = await s.status;
    expect(st.code).toBe(status.FAILED_PRECONDITION);
    expect(st.details).toBe("the first message on a stream must be Hello");
    const agents = await fx.sql`SELECT 1 FROM agents WHERE agent_id = 'paris-09'`;
    expect(agents.length).toBe(0);
    expect(await count("paris-09")).toEqual({ n: 0, distinct: 0 });
  });

  it("keeps the agent's timestamps and marks results that arrive late", async () => {
    const s = await fx.open("berlin-01", "berlin");
    await hello(s, "berlin", "berlin-01");
    const hourAgo = Date.now() - 3_600_000;
    const fresh = Date.now() - 1_000;
    s.send({
      kind: {
        case: "batch",
        value: { firstSeq: 1n, results: [wireResult(1, hourAgo), wireResult(1, fresh)] },
      },
    });
    expect((await s.next()).kind.value).toMatchObject({ upToSeq: 2n });
    const rows = await fx.sql`
      SELECT seq, started_at, late, received_at, operations FROM results WHERE agent_id = 'berlin-01' ORDER BY seq`;
    expect(rows.map((r): unknown[] => [r["seq"], (r["started_at"] as Date).getTime(), r["late"]])).toEqual([
      [1n, hourAgo, true],
      [2n, fresh, false],
    ]);
    expect((rows[0]?.["received_at"] as Date).getTime()).toBeGreaterThanOrEqual(fresh);
    expect(rows[0]?.["operations"]).toContainEqual({ operation: "login", samples_ms: [1.8], failures: 0 });
    s.end();
    await s.status;
  });

  it("stores exactly once when two replicas on one database get the same agent's batches", async () => {
    const replica = await startIngestOn(fx.url);
    try {
      const a = await fx.open("lyon-01", "lyon");
      const b = await replica.open("lyon-01", "lyon");
      await hello(a, "lyon", "lyon-01");
      await hello(b, "lyon", "lyon-01");
      const batches = 20;
      const size = 25;
      for (let i = 0; i < batches; i++) {
        const first = BigInt(i * size + 1);
        const value = { firstSeq: first, results: wireResults(size) };
        a.send({ kind: { case: "batch", value } });
        b.send({ kind: { case: "batch", value } });
      }
      for (let i = 0; i < batches; i++) {
        const up = BigInt((i + 1) * size);
        expect((await a.next()).kind.value).toMatchObject({ upToSeq: up });
        expect((await b.next()).kind.value).toMatchObject({ upToSeq: up });
      }
      expect(await count("lyon-01")).toEqual({ n: batches * size, distinct: batches * size });
      a.end();
      b.end();
      await Promise.all([a.status, b.status]);
    } finally {
      await replica.close();
    }
  });
});
