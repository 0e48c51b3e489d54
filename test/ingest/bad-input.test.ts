// Acceptance item 3: malformed protobuf bytes, an oversized message, invalid
// fields, a sequence going backwards and the rate limit are each answered
// with a clear in-band Reject, and valid data on the SAME stream still lands.
import { fromBinary } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ResultSchema, type AggregatorMessage } from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { startIngestFixture, type IngestFixture, type TestStream } from "./fixture.ts";
import { wireResult, wireResults } from "./results.ts";

let pg: RunningPostgres;
let fx: IngestFixture;

beforeAll(async () => {
  pg = await startPostgres();
  fx = await startIngestFixture(pg, "bad_input");
});
afterAll(async () => {
  await fx?.close();
  await pg?.stop();
});

async function openAs(agent: string): Promise<TestStream> {
  const s = await fx.open(agent, "paris");
  s.send({ kind: { case: "hello", value: { site: "paris", agentId: agent } } });
  expect((await s.next()).kind.case).toBe("welcome");
  return s;
}

function rejectOf(m: AggregatorMessage) {
  if (m.kind.case !== "reject") throw new Error(`expected Reject, got ${m.kind.case}`);
  return m.kind.value;
}

function ackOf(m: AggregatorMessage): bigint {
  if (m.kind.case !== "ack") throw new Error(`expected Ack, got ${m.kind.case}`);
  return m.kind.value.upToSeq;
}

async function stored(agent: string): Promise<bigint[]> {
  const rows = await fx.sql`SELECT seq FROM results WHERE agent_id = ${agent} ORDER BY seq`;
  return rows.map((r) => r["seq"] as bigint);
}

function batch(firstSeq: bigint, results = wireResults(2)) {
  return { kind: { case: "batch" as const, value: { firstSeq, results } } };
}

describe("bad input on one stream", () => {
  it("answers malformed bytes with INVALID_ARGUMENT and keeps the stream", async () => {
    const s = await openAs("bad-bytes");
    // Field 15, wire type 7: no such wire type. Then a truncated varint.
    s.send(Buffer.from([0x7f, 0xff, 0xff]));
    const r = rejectOf(await s.next());
    expect(r.code).toBe(status.INVALID_ARGUMENT);
    expect(r.message).toMatch(/^malformed smbfleet\.v1\.AgentMessage: /);
    expect([r.firstSeq, r.lastSeq]).toEqual([0n, 0n]);
    s.send(batch(1n));
    expect(ackOf(await s.next())).toBe(2n);
    expect(await stored("bad-bytes")).toEqual([1n, 2n]);
    s.end();
    expect((await s.status).code).toBe(status.OK);
  });

  it("answers an oversized message with RESOURCE_EXHAUSTED, stores none of it, and keeps the stream", async () => {
    const s = await openAs("bad-size");
    // ~200 B per result: 1000 of them is ~3× the test limit of 64 KiB.
    s.send(batch(1n, wireResults(1000)));
    const r = rejectOf(await s.next());
    expect(r.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(r.message).toMatch(/^message of \d+ bytes is over the limit of 65536$/);
    expect(await stored("bad-size")).toEqual([]);
    s.send(batch(1n));
    expect(ackOf(await s.next())).toBe(2n);
    expect(await stored("bad-size")).toEqual([1n, 2n]);
    s.end();
    await s.status;
  });

  it("quarantines invalid results naming the field, acks the batch and stores the valid ones", async () => {
    const s = await openAs("bad-fields");
    const ok = wireResult(0);
    const future = Date.now() + 3_600_000;
    const results = [
      ok,
      wireResult(0, undefined, { operations: [{ operation: "foo", samplesMs: [1], failures: 0 }] }),
      wireResult(0, undefined, { operations: [{ operation: "read", samplesMs: [1, -3], failures: 0 }] }),
      wireResult(0, future),
      wireResult(0, undefined, { target: { name: "x", address: "", port: 445, share: "s" } }),
      wireResult(0, undefined, { failureClass: "gremlins" }),
      wireResult(0, undefined, { durationMs: Number.NaN }),
      ok,
    ];
    s.send(batch(1n, results));
    const r = rejectOf(await s.next());
    expect(r.code).toBe(status.INVALID_ARGUMENT);
    expect([r.firstSeq, r.lastSeq]).toEqual([2n, 7n]);
    expect(r.message).toBe(
      "6 of 8 results quarantined: " +
        'results[1].operations[0].operation: unknown operation "foo"; ' +
        "results[2].operations[0].samples_ms[1]: negative latency -3; " +
        `results[3].started_at_unix_ms: ${new Date(future).toISOString()} is 3600 s in the future (limit 300 s); ` +
        "results[4].target.address: required; " +
        'results[5].failure_class: unknown failure class "gremlins"; and 1 more',
    );
    // The Ack still covers the whole batch: nothing in it is worth resending.
    expect(ackOf(await s.next())).toBe(8n);
    expect(await stored("bad-fields")).toEqual([1n, 8n]);
    const q =
      await fx.sql`SELECT seq, reason, raw FROM quarantined_results WHERE agent_id = 'bad-fields' ORDER BY seq`;
    expect(q.map((row) => row["seq"] as bigint)).toEqual([2n, 3n, 4n, 5n, 6n, 7n]);
    expect(q[5]?.["reason"]).toBe("results[6].duration_ms: not a finite number (NaN)");
    // The raw bytes are the result as received, decodable for inspection.
    const raw = fromBinary(ResultSchema, q[0]?.["raw"] as Buffer);
    expect(raw.operations[0]?.operation).toBe("foo");
    // A resend of the same batch is recognised: nothing stored or quarantined twice.
    s.end();
    await s.status;
    const again = await openAs("bad-fields");
    again.send(batch(1n, results));
    expect(ackOf(await again.next())).toBe(8n);
    const counts = await fx.sql`
      SELECT (SELECT count(*)::int FROM quarantined_results WHERE agent_id = 'bad-fields') AS q,
             (SELECT count(*)::int FROM results WHERE agent_id = 'bad-fields') AS r`;
    expect(counts[0]).toEqual({ q: 6, r: 2 });
    again.end();
    await again.status;
  });

  it("refuses a batch going backwards on the stream with OUT_OF_RANGE and writes nothing", async () => {
    const s = await openAs("bad-seq");
    s.send(batch(1n, wireResults(10)));
    expect(ackOf(await s.next())).toBe(10n);
    s.send(batch(5n, wireResults(10)));
    const r = rejectOf(await s.next());
    expect(r.code).toBe(status.OUT_OF_RANGE);
    expect(r.message).toBe("batch.first_seq 5 goes backwards: seq 10 was already received on this stream");
    expect([r.firstSeq, r.lastSeq]).toEqual([5n, 14n]);
    expect((await stored("bad-seq")).length).toBe(10);
    s.send(batch(11n, wireResults(3)));
    expect(ackOf(await s.next())).toBe(13n);
    expect((await stored("bad-seq")).length).toBe(13);
    // first_seq 0 is not a sequence number.
    s.send(batch(0n));
    expect(rejectOf(await s.next()).code).toBe(status.INVALID_ARGUMENT);
    s.end();
    await s.status;
  });

  it("answers a message with no kind and a second Hello in-band", async () => {
    const s = await openAs("bad-kind");
    s.send({});
    expect(rejectOf(await s.next()).code).toBe(status.INVALID_ARGUMENT);
    s.send({ kind: { case: "hello", value: { site: "paris", agentId: "bad-kind" } } });
    expect(rejectOf(await s.next()).code).toBe(status.FAILED_PRECONDITION);
    s.send(batch(1n));
    expect(ackOf(await s.next())).toBe(2n);
    s.end();
    await s.status;
  });
});

describe("rate limit", () => {
  it("refuses over-limit batches without acking them until they are resent", async () => {
    const limited = await startIngestFixture(pg, "rate", { ratePerSecond: 20 }); // burst 40
    try {
      const s = await limited.open("fast-01", "paris");
      s.send({ kind: { case: "hello", value: { site: "paris", agentId: "fast-01" } } });
      expect((await s.next()).kind.case).toBe("welcome");
      s.send(batch(1n, wireResults(50))); // allowed: the bucket was full, now in debt
      s.send(batch(51n, wireResults(10))); // refused: rate
      s.send(batch(61n, wireResults(10))); // refused: 51 must come first
      expect(ackOf(await s.next())).toBe(50n);
      const r1 = rejectOf(await s.next());
      expect(r1.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(r1.message).toMatch(/^rate limit exceeded; resend from seq 51 in \d+ ms$/);
      expect([r1.firstSeq, r1.lastSeq]).toEqual([51n, 60n]);
      const r2 = rejectOf(await s.next());
      expect(r2.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(r2.message).toBe(
        "refused: waiting for seq 51 to be resent first (it was refused for the rate limit)",
      );
      const waitMs = Number(/in (\d+) ms/.exec(r1.message)?.[1]);
      await new Promise((resolve) => setTimeout(resolve, waitMs + 50));
      s.send(batch(51n, wireResults(10)));
      expect(ackOf(await s.next())).toBe(60n);
      const rows = await limited.sql`SELECT count(*)::int AS n FROM results WHERE agent_id = 'fast-01'`;
      expect(rows[0]?.["n"]).toBe(60);
      s.end();
      await s.status;
    } finally {
      await limited.close();
    }
  });
});
