// What goes in comes out: results sent over a real stream are read back
// from PostgreSQL column by column, through both ways the aggregator reads a
// result (its fast path for plain ASCII, the generated decoder for the rest)
// and the COPY text encoding: tabs, newlines, backslashes, quotes, non-ASCII
// and a leading BOM in failure messages, awkward numbers, empty operations.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { startIngestFixture, type IngestFixture } from "./fixture.ts";
import { wireResult, type ResultInit } from "./results.ts";

let pg: RunningPostgres;
let fx: IngestFixture;

beforeAll(async () => {
  pg = await startPostgres();
  fx = await startIngestFixture(pg, "fidelity");
});
afterAll(async () => {
  await fx?.close();
  await pg?.stop();
});

const NOW = Date.now();

const sent: ResultInit[] = [
  wireResult(0, NOW - 1_000),
  wireResult(1, NOW - 3_600_000, {
    healthy: false,
    failureClass: "timeout",
    failureMessage: "tab\there\nnew line\r\nback\\slash 'quoted' \"double\" \\N",
    aboveThreshold: ["write", "write", "read"],
    durationMs: 1e-7,
  }),
  wireResult(2, NOW - 2_000, {
    healthy: false,
    failureClass: "unknown",
    failureMessage: "\ufeffNT_STATUS_ÜNKNOWN – ünïcode ✓ \t end",
    operations: [],
    durationMs: 0,
  }),
  wireResult(3, NOW - 5_000, {
    operations: [
      { operation: "integrity", samplesMs: [], failures: 4_000_000_000 },
      { operation: "login", samplesMs: [0, 123456.789, 2 ** 40, Number.MIN_VALUE, 1e21], failures: 1 },
    ],
  }),
];

describe("stored results", () => {
  it("read back exactly as sent, whichever way the aggregator read them", async () => {
    const s = await fx.open("fid-01", "paris");
    s.send({ kind: { case: "hello", value: { site: "paris", agentId: "fid-01" } } });
    expect((await s.next()).kind.case).toBe("welcome");
    s.send({ kind: { case: "batch", value: { firstSeq: 1n, results: sent } } });
    expect((await s.next()).kind.value).toMatchObject({ upToSeq: 4n });
    s.end();
    await s.status;

    const rows = await fx.sql`
      SELECT r.seq, t.address, r.started_at, r.duration_ms, r.healthy, r.failure_class, r.failure_message,
             r.operations::text AS operations, r.above_threshold, r.late
      FROM results r JOIN targets t ON t.id = r.target_id
      WHERE r.agent_id = 'fid-01' ORDER BY r.seq`;
    expect(rows.map((r) => ({ ...r, operations: JSON.parse(r["operations"] as string) as unknown }))).toEqual(
      sent.map((x, i) => ({
        seq: BigInt(i + 1),
        address: x.target!.address,
        started_at: new Date(Number(x.startedAtUnixMs)),
        duration_ms: x.durationMs,
        healthy: x.healthy,
        failure_class: x.failureClass === "" ? null : x.failureClass,
        failure_message: x.failureMessage === "" ? null : x.failureMessage,
        operations: (x.operations ?? []).map((o) => ({
          operation: o.operation,
          samples_ms: o.samplesMs,
          failures: o.failures,
        })),
        above_threshold: x.aboveThreshold,
        late: i === 1,
      })),
    );
  });
});
