// What one agent may cost HQ (aggregator/ingest/stream/quotas.ts), against a
// real ingest server and PostgreSQL: streams per certificate, the Hello
// deadline, the rate of each message kind, and the per-agent log budget.
// Bucket clocks are held still (or moved by hand), so counts do not depend on
// how fast this machine runs; every loop is bounded in count, and every wait
// is for a condition with a deadline.
import { status, type StatusObject } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { startIngestFixture, type IngestFixture, type TestStream } from "./fixture.ts";
import { captureLog } from "./log-capture.ts";
import { wireResults } from "./results.ts";

let pg: RunningPostgres;

beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

function hello(s: TestStream, site: string, agentId: string, targets: unknown[] = []): void {
  s.send({ kind: { case: "hello", value: { site, agentId, agentVersion: "t", targets: targets as never } } });
}

async function welcomed(s: TestStream): Promise<void> {
  const m = await s.next();
  if (m.kind.case !== "welcome") throw new Error(`expected Welcome, got ${m.kind.case}`);
}

function batch(firstSeq: bigint, n = 2) {
  return { kind: { case: "batch" as const, value: { firstSeq, results: wireResults(n) } } };
}

/** Every status, or the test fails naming how many were still open at the deadline. */
async function allStatuses(streams: TestStream[], deadlineMs: number): Promise<StatusObject[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`streams still open after ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    return await Promise.race([Promise.all(streams.map((s) => s.status)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function limitedCount(fx: IngestFixture, limit: string): Promise<number> {
  const m = await fx.metrics.limited.get();
  return m.values.find((v) => v.labels["limit"] === limit)?.value ?? 0;
}

describe("streams per certificate", () => {
  let fx: IngestFixture;
  beforeAll(async () => {
    fx = await startIngestFixture(pg, "limits_streams", { tls: true });
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("refuses 998 of 1,000 streams from one certificate, stays healthy and serves another agent", async () => {
    // 1,000 streams over 20 connections of the same certificate. Two limits refuse them, both
    // with RESOURCE_EXHAUSTED: the per-agent one (2 streams), and per connection
    // grpc.max_concurrent_streams (4), which Node's HTTP/2 enforces by resetting the extra
    // streams (ENHANCE_YOUR_CALM). Node closes a connection after 100 such resets (its
    // maxSessionRejectedStreams), so 50 per connection keeps the two accepted streams alive.
    const connections = await Promise.all(Array.from({ length: 20 }, () => fx.connect("paris-01", "paris")));
    const streams: TestStream[] = [];
    for (let i = 0; i < 1000; i++) {
      const s = connections[i % connections.length]!.stream();
      hello(s, "paris", "paris-01");
      streams.push(s);
    }
    // The two accepted streams stay open: wait (bounded) for the 998 others to end.
    const ended: StatusObject[] = [];
    const pending = new Set(streams);
    for (const s of streams) void s.status.then((st) => (ended.push(st), pending.delete(s)));
    const deadline = Date.now() + 90_000;
    while (ended.length < 998 && Date.now() < deadline) {
      await Promise.race([...[...pending].map((s) => s.status), new Promise((r) => setTimeout(r, 1_000))]);
    }
    expect(ended.length).toBe(998);
    expect(ended.every((st) => st.code === status.RESOURCE_EXHAUSTED)).toBe(true);
    const perAgent = ended.filter(
      (st) => st.details === "agent paris-01 already has 2 streams open ([limits] max_streams_per_agent)",
    ).length;
    const perConnection = ended.filter(
      (st) => st.details === "Bandwidth exhausted or memory limit exceeded",
    ).length;
    expect(perAgent + perConnection).toBe(998);
    expect(perAgent).toBeGreaterThan(0);
    expect(await limitedCount(fx, "max_streams_per_agent")).toBe(perAgent);
    const open = [...pending];
    expect(open.length).toBe(2);
    for (const s of open) await welcomed(s);
    expect(fx.server.streams).toBe(2);

    // Another agent is served as usual.
    const berlin = await fx.open("berlin-01", "berlin");
    hello(berlin, "berlin", "berlin-01");
    await welcomed(berlin);
    berlin.send(batch(1n));
    expect((await berlin.next()).kind).toMatchObject({ case: "ack", value: { upToSeq: 2n } });
    berlin.end();
    expect((await berlin.status).code).toBe(status.OK);

    // A slot freed is a slot usable again.
    open[0]!.end();
    await open[0]!.status;
    const again = (await fx.connect("paris-01", "paris")).stream();
    hello(again, "paris", "paris-01");
    await welcomed(again);
    again.end();
    open[1]!.end();
    await allStatuses([again, open[1]!], 10_000);
  });
});

describe("Hello deadline", () => {
  it("closes a stream that never sends Hello with DEADLINE_EXCEEDED", async () => {
    const fx = await startIngestFixture(pg, "limits_deadline", { limits: { helloTimeoutMs: 1_000 } });
    try {
      const silent = await fx.open("paris-02", "paris");
      const [st] = await allStatuses([silent], 30_000);
      expect(st?.code).toBe(status.DEADLINE_EXCEEDED);
      expect(st?.details).toBe("no Hello within 1 s of the stream's start ([limits] hello_timeout)");
      expect(await limitedCount(fx, "hello_timeout")).toBe(1);
      expect(fx.server.streams).toBe(0);
      // A stream that does send Hello is not closed by the deadline: it gets its Welcome and lives on.
      const s = await fx.open("paris-02", "paris");
      hello(s, "paris", "paris-02");
      await welcomed(s);
      s.send(batch(1n));
      expect((await s.next()).kind.case).toBe("ack");
      s.end();
      expect((await s.status).code).toBe(status.OK);
    } finally {
      await fx.close();
    }
  });
});

describe("connection age", () => {
  it("recycles a connection past grpc.max_connection_age_ms; the agent reconnects and loses nothing", async () => {
    const fx = await startIngestFixture(pg, "limits_age", {
      connections: { maxAgeMs: 1_000, ageGraceMs: 500 },
    });
    try {
      const s = await fx.open("paris-03", "paris");
      hello(s, "paris", "paris-03");
      await welcomed(s);
      s.send(batch(1n));
      expect((await s.next()).kind.case).toBe("ack");
      // GOAWAY after ~1 s (±10 %), the stream cut 0.5 s later: it ends without the agent ending it.
      const [st] = await allStatuses([s], 30_000);
      expect(st?.code).toBe(status.UNAVAILABLE);
      const again = await fx.open("paris-03", "paris");
      hello(again, "paris", "paris-03");
      const w = await again.next();
      expect(w.kind).toMatchObject({ case: "welcome", value: { highWaterSeq: 2n } });
      again.cancel();
    } finally {
      await fx.close();
    }
  });
});

describe("message rates per agent", () => {
  let fx: IngestFixture;
  beforeAll(async () => {
    // The buckets' clock stands still: nothing refills during the test.
    fx = await startIngestFixture(pg, "limits_rates", {
      limits: { hellosPerMinute: 3, heartbeatsPerMinute: 4, batchesPerSecond: 2 },
      quotaClock: () => 0,
    });
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("refuses a Hello over the rate before any database work", async () => {
    for (let i = 0; i < 3; i++) {
      const s = await fx.open("rate-hello", "paris");
      hello(s, "paris", "rate-hello");
      await welcomed(s);
      s.end();
      await s.status;
    }
    const s = await fx.open("rate-hello", "paris");
    hello(s, "paris", "rate-hello");
    const st = await s.status;
    expect(st.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(st.details).toMatch(
      /^Hellos over 3 a minute \(\[limits\] hellos_per_minute\); reconnect in \d+ ms$/,
    );
    expect(await limitedCount(fx, "hellos_per_minute")).toBe(1);
  });

  it("answers heartbeats over the rate with an in-band Reject and keeps the stream", async () => {
    const s = await fx.open("rate-beat", "paris");
    hello(s, "paris", "rate-beat");
    await welcomed(s);
    for (let i = 0; i < 10; i++) s.send({ kind: { case: "heartbeat", value: { backlog: BigInt(i) } } });
    s.send(batch(1n));
    const replies = [];
    for (;;) {
      const m = await s.next();
      replies.push(m);
      if (m.kind.case === "ack") break;
    }
    expect(replies.length).toBe(7); // 4 beats let through silently, 6 refused, then the Ack
    for (const m of replies.slice(0, 6)) {
      expect(m.kind).toMatchObject({
        case: "reject",
        value: {
          code: status.RESOURCE_EXHAUSTED,
          message: "heartbeats over 4 a minute ([limits] heartbeats_per_minute)",
          firstSeq: 0n,
          lastSeq: 0n,
        },
      });
    }
    // The fourth beat let through is the last recorded.
    const row = await fx.sql`SELECT backlog FROM agents WHERE agent_id = 'rate-beat'`;
    expect(row[0]?.["backlog"]).toBe(3n);
    s.end();
    await s.status;
  });

  it("refuses batches over the rate before reading them, and later ones until the first is resent", async () => {
    const s = await fx.open("rate-batch", "paris");
    hello(s, "paris", "rate-batch");
    await welcomed(s);
    // Burst of 2 s at 2 a second: 4 batches, then refusals.
    for (let i = 0; i < 6; i++) s.send(batch(BigInt(1 + 2 * i)));
    const kinds: string[] = [];
    for (let i = 0; i < 6; i++) {
      const m = await s.next();
      kinds.push(
        m.kind.case === "ack"
          ? `ack ${m.kind.value.upToSeq}`
          : m.kind.case === "reject"
            ? `reject ${m.kind.value.firstSeq}: ${m.kind.value.message}`
            : String(m.kind.case),
      );
    }
    expect(kinds.slice(0, 4)).toEqual(["ack 2", "ack 4", "ack 6", "ack 8"]);
    expect(kinds[4]).toMatch(
      /^reject 9: batches over 2 a second \(\[limits\] batches_per_second\); resend from seq 9 in \d+ ms$/,
    );
    // Refused by the rate too (the bucket is empty), and it names the resend point.
    expect(kinds[5]).toMatch(/^reject 11: /);
    const rows = await fx.sql`SELECT count(*)::int AS n FROM results WHERE agent_id = 'rate-batch'`;
    expect(rows[0]?.["n"]).toBe(8);
    s.end();
    await s.status;
  });
});

describe("log budget per agent", () => {
  it("writes a few lines about one agent's bad input and says how many it suppressed", async () => {
    const log = captureLog();
    let now = 0;
    const fx = await startIngestFixture(pg, "limits_logs", {
      logger: log.logger,
      limits: { logLinesPerMinute: 5 },
      quotaClock: () => now,
    });
    try {
      const s = await fx.open("noisy-01", "paris");
      // 5,000 unusable targets (no address): one warning each, before the budget.
      const bad = Array.from({ length: 5000 }, (_, i) => ({ share: `s${i}`, port: 445 }));
      hello(s, "paris", "noisy-01", bad);
      await welcomed(s);
      const about = () => log.lines.filter((l) => l["agent"] === "noisy-01" && l.level === 40);
      expect(about().length).toBe(5);
      expect(about()[0]?.msg).toBe("Hello lists an unusable target; ignored");
      // 1,000 undecodable messages: each answered in-band, none written to the log.
      for (let i = 0; i < 1000; i++) s.send(Buffer.from([0x7f, 0xff, 0xff]));
      for (let i = 0; i < 1000; i++) expect((await s.next()).kind.case).toBe("reject");
      expect(about().length).toBe(5);
      // A minute later the next line says what was left out.
      now = 60_000;
      s.send(Buffer.from([0x7f, 0xff, 0xff]));
      expect((await s.next()).kind.case).toBe("reject");
      const last = about().at(-1)!;
      expect(last.msg).toBe("rejected (5995 similar lines suppressed in the last 60 s)");
      expect(last["suppressed"]).toBe(5995);
      expect((await fx.metrics.logLinesSuppressed.get()).values[0]?.value).toBe(5995);
      // Another agent's lines are not held back by this one's budget.
      const quiet = await fx.open("quiet-01", "paris");
      hello(quiet, "paris", "quiet-01", [{ share: "x", port: 445 }]);
      await welcomed(quiet);
      expect(log.lines.filter((l) => l["agent"] === "quiet-01" && l.level === 40).length).toBe(1);
      for (const t of [s, quiet]) t.end();
      await allStatuses([s, quiet], 10_000);
    } finally {
      await fx.close();
    }
  });
});
