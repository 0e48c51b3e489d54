// Batches that queue behind a slow commit are stored together in one
// transaction (aggregator/ingest/stream/batch-group.ts), and the agent still hears
// every reply in the order it sent the batches: each Ack only after the
// commit, Rejects and quarantine Rejects in their places.
import { status } from "@grpc/grpc-js";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AggregatorMessage } from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import { queuedBytes } from "../harness/ports.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { until } from "../harness/wait.ts";
import { startIngestFixture, type IngestFixture } from "./fixture.ts";
import { wireResult, wireResults } from "./results.ts";

let pg: RunningPostgres;
let fx: IngestFixture;

beforeAll(async () => {
  pg = await startPostgres();
  fx = await startIngestFixture(pg, "merged");
});
afterAll(async () => {
  await fx?.close();
  await pg?.stop();
});

function summary(m: AggregatorMessage): string {
  switch (m.kind.case) {
    case "ack":
      return `ack ${m.kind.value.upToSeq}`;
    case "reject":
      return `reject ${m.kind.value.code} ${m.kind.value.firstSeq}-${m.kind.value.lastSeq}`;
    case "welcome":
    case undefined:
      return String(m.kind.case);
  }
}

describe("batches queued behind a commit", () => {
  it("are committed together and answered in order", async () => {
    const s = await fx.open("merge-01", "paris");
    s.send({ kind: { case: "hello", value: { site: "paris", agentId: "merge-01" } } });
    expect((await s.next()).kind.case).toBe("welcome");

    // Hold the agent's row lock, so that the first batch waits inside its commit.
    const locker = postgres(fx.url, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holding = locker.begin(async (tx) => {
      await tx`SELECT 1 FROM agents WHERE agent_id = 'merge-01' FOR UPDATE`;
      locked();
      await released;
    });
    try {
      await isLocked;
      s.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(3) } } });
      // Wait until that batch is blocked on the lock, then queue the rest behind it.
      await until("the first batch to wait on the agent's row lock", async () => {
        const w = await fx.sql`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'smbfleet-aggregator' AND wait_event_type = 'Lock'`;
        return w[0]?.["n"] === 1;
      });
      s.send({ kind: { case: "batch", value: { firstSeq: 4n, results: wireResults(2) } } });
      s.send({ kind: { case: "batch", value: { firstSeq: 2n, results: wireResults(2) } } }); // backwards
      const bad = wireResult(0, undefined, { durationMs: -1 });
      s.send({ kind: { case: "batch", value: { firstSeq: 6n, results: [wireResult(1), bad] } } });
      s.send({ kind: { case: "batch", value: { firstSeq: 8n, results: [] } } }); // empty: acked with the last seq
      // All of them reach the aggregator and queue: written, and no byte left in a socket queue.
      await s.written();
      await until("the aggregator to read every batch", () => queuedBytes(fx.server.port) === 0, {
        detail: () => `${queuedBytes(fx.server.port)} bytes queued`,
      });
      expect(s.pending).toBe(0); // nothing answered while the commit waits
    } finally {
      release();
      await holding;
      await locker.end({ timeout: 5 });
    }

    const replies: string[] = [];
    for (let i = 0; i < 6; i++) replies.push(summary(await s.next()));
    expect(replies).toEqual([
      "ack 3",
      "ack 5",
      `reject ${status.OUT_OF_RANGE} 2-3`,
      `reject ${status.INVALID_ARGUMENT} 7-7`,
      "ack 7",
      "ack 7",
    ]);
    // The batches behind the first went in one transaction, and nothing twice.
    const rows = await fx.sql`
      SELECT seq, xmin::text AS tx FROM results WHERE agent_id = 'merge-01' ORDER BY seq`;
    expect(rows.map((r) => r["seq"] as bigint)).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
    const tx = rows.map((r) => r["tx"] as string);
    expect(new Set(tx.slice(3)).size).toBe(1);
    expect(tx[3]).not.toBe(tx[0]);
    const q = await fx.sql`SELECT seq FROM quarantined_results WHERE agent_id = 'merge-01'`;
    expect(q.map((r) => r["seq"] as bigint)).toEqual([7n]);
    s.end();
    await s.status;
  });
});
