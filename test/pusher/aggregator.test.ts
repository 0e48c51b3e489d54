// The sender against the real aggregator ingest server and PostgreSQL: the
// protocol contract both sides rely on. Rate-limit refusals (go-back-N) are
// resent on the same stream without loss or duplicates; quarantined results
// (a Reject followed by the batch's Ack) are not resent and not lost.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { openBuffer, type ResultBuffer } from "../../agent/buffer/buffer.ts";
import { sampleResult } from "../../agent/buffer/testdata/sample-result.ts";
import { startShipper, type Shipper } from "../../agent/pusher/shipper.ts";
import { silentLogger } from "../../shared/logger.ts";
import { issueAgent } from "../../shared/tls/pki.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { startIngestFixture, type IngestFixture } from "../ingest/fixture.ts";
import { until } from "../harness/wait.ts";

let pg: RunningPostgres;
let dir: string;
let fixture: IngestFixture | undefined;
let buffer: ResultBuffer | undefined;
let shipper: Shipper | undefined;
let dbCount = 0;

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "smbfleet-pusher-agg-"));
});
afterAll(async () => {
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await shipper?.stop();
  buffer?.close();
  await fixture?.close();
  shipper = undefined;
  buffer = undefined;
  fixture = undefined;
});

async function start(ratePerSecond: number, buffered: number): Promise<{ f: IngestFixture; s: Shipper }> {
  const f = await startIngestFixture(pg, `pusher_${++dbCount}`, { tls: true, ratePerSecond });
  fixture = f;
  const files = await issueAgent(f.pkiDir!, { site: "paris", agent: "paris-01", force: true });
  buffer = openBuffer(join(dir, `buffer-${dbCount}.db`), { maxBytes: 1 << 30, maxAgeSeconds: 86_400 });
  const now = Date.now();
  buffer.appendMany(
    Array.from({ length: buffered }, (_, i) => sampleResult(i + 1, now - (buffered - i) * 100)),
  );
  shipper = startShipper(
    {
      buffer,
      aggregator: {
        url: `127.0.0.1:${f.server.port}`,
        ca: files.ca,
        cert: files.cert,
        key: files.key,
        insecure: false,
      },
      site: "paris",
      agentId: "paris-01",
      agentVersion: "0.0.0-test",
      targets: [sampleResult(0).target],
      logger: silentLogger(),
      options: {
        maxBatchResults: 100,
        backoff: { initialMs: 50, maxMs: 500, factor: 2, jitter: 0.2 },
        retryBackoff: { initialMs: 100, maxMs: 500, factor: 2, jitter: 0.2 },
        stopGraceMs: 500,
      },
    },
    new AbortController().signal,
  );
  return { f, s: shipper };
}

async function stored(f: IngestFixture): Promise<{ n: number; distinct: number; lo: number; hi: number }> {
  const [row] = await f.sql<{ n: string; d: string; lo: string | null; hi: string | null }[]>`
    SELECT count(*)::text AS n, count(DISTINCT seq)::text AS d, min(seq)::text AS lo, max(seq)::text AS hi
    FROM results WHERE agent_id = 'paris-01'`;
  return { n: Number(row?.n), distinct: Number(row?.d), lo: Number(row?.lo ?? 0), hi: Number(row?.hi ?? 0) };
}

it("drains through the rate limit on one stream: every result stored once", async () => {
  // 2,000/s with a 2 s burst: a 6,000-result backlog must be refused part of the way.
  const { f, s } = await start(2_000, 6_000);
  await until("drained", () => buffer!.backlog().count === 0, 30_000);
  expect(await stored(f)).toEqual({ n: 6_000, distinct: 6_000, lo: 1, hi: 6_000 });
  expect(s.status().rejects).toBeGreaterThan(0);
  expect(s.status()).toMatchObject({ connects: 1, rejected: 0, ackedSeq: 6_000 });
}, 60_000);

it("a quarantined result is answered with a Reject and the batch's Ack: nothing resent, nothing lost", async () => {
  const { f, s } = await start(1_000_000, 50);
  await until("drained", () => buffer!.backlog().count === 0, 20_000);
  const bad = sampleResult(51);
  bad.operations[1]!.samplesMs = [-1]; // negative latency: quarantined by the aggregator
  s.accept(bad);
  s.accept(sampleResult(52));
  await until("acked", () => s.status().ackedSeq === 52, 20_000);
  expect(s.status()).toMatchObject({ rejects: 1, rejected: 0 });
  expect(buffer!.backlog().count).toBe(0);
  expect(await stored(f)).toEqual({ n: 51, distinct: 51, lo: 1, hi: 52 });
  const [q] = await f.sql<
    { seq: string }[]
  >`SELECT seq::text FROM quarantined_results WHERE agent_id = 'paris-01'`;
  expect(q?.seq).toBe("51");
}, 60_000);
