// A compromised site must not be able to disturb HQ through its targets: an
// agent declaring 10,000 distinct targets, or sending fields far over their
// limits, is capped or quarantined; another agent's results still land; and
// /metrics, served over HTTP as in production, stays under a stated size.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AggregatorMessage } from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import { startHttpServer, type RunningHttpServer } from "../../shared/http/server.ts";
import { silentLogger } from "../../shared/logger.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { startIngestFixture, type IngestFixture, type TestStream } from "./fixture.ts";
import { wireResult, type ResultInit } from "./results.ts";

const MiB = 1024 * 1024;
/** Limits of this test's aggregator; everything else is as deployed. */
const MAX_TARGETS = 100;
const PER_AGENT_RENDER_BYTES = 4 * MiB;

let pg: RunningPostgres;
let fx: IngestFixture;
let http: RunningHttpServer;

beforeAll(async () => {
  pg = await startPostgres();
  fx = await startIngestFixture(pg, "target_limits", {
    // A Hello listing 10,000 targets is ~700 KB.
    settings: { maxMessageBytes: 4 * MiB },
    // The distinct cap is what this test is about: the new-target rate is set out of its way.
    limits: { maxTargetsPerAgent: MAX_TARGETS, newTargetsPerMinute: 1_000_000 },
    metrics: { maxRenderBytesPerAgent: PER_AGENT_RENDER_BYTES },
  });
  http = await startHttpServer({
    listen: { host: "127.0.0.1", port: 0 },
    registry: fx.metrics.registry,
    render: () => fx.metrics.render(),
    logger: silentLogger(),
  });
});
afterAll(async () => {
  await http?.close();
  await fx?.close();
  await pg?.stop();
});

async function scrape(): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${http.port}/metrics`);
  return { status: res.status, body: await res.text() };
}

async function connect(
  agent: string,
  site: string,
  targets: ResultInit["target"][] = [],
): Promise<TestStream> {
  const s = await fx.open(agent, site);
  s.send({
    kind: { case: "hello", value: { site, agentId: agent, agentVersion: "t", targets: targets as never } },
  });
  const m = await s.next();
  if (m.kind.case !== "welcome") throw new Error(`expected Welcome, got ${m.kind.case}`);
  return s;
}

/** Sends one batch and collects its replies up to its Ack. */
async function send(s: TestStream, firstSeq: bigint, results: ResultInit[]): Promise<AggregatorMessage[]> {
  s.send({ kind: { case: "batch", value: { firstSeq, results } } });
  const replies: AggregatorMessage[] = [];
  for (let i = 0; i < 3; i++) {
    const m = await s.next(30_000);
    replies.push(m);
    if (m.kind.case === "ack") return replies;
  }
  throw new Error(`no Ack for batch ${firstSeq}: ${JSON.stringify(replies.map((r) => r.kind.case))}`);
}

async function one(sql: Promise<Record<string, unknown>[]>): Promise<number> {
  return (await sql)[0]?.["n"] as number;
}

/** Bytes of the target series (smbprobe's four metrics) of `agent` in an exposition. */
function targetBytes(body: string, agent: string): number {
  return body
    .split("\n")
    .filter((l) => l.startsWith("smb_") && l.includes(`agent="${agent}"`))
    .reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
}

describe("an agent that declares 10,000 distinct targets", () => {
  it("gets 100 of them; the rest are ignored in Hello and quarantined in batches; berlin still lands", async () => {
    const now = Date.now() - 5_000;
    const targets = Array.from({ length: 10_000 }, (_, t) => wireResult(t, now).target);
    const evil = await connect("evil-01", "evil", targets);
    expect(await one(fx.sql`SELECT count(*)::int AS n FROM targets WHERE site = 'evil'`)).toBe(MAX_TARGETS);
    const ignored = (await fx.metrics.helloTargetsIgnored.get()).values;
    expect(ignored.find((v) => v.labels["reason"] === "max_targets_per_agent")?.value).toBe(9_900);

    const berlin = await connect("berlin-01", "berlin");
    let berlinSeq = 1n;
    for (let b = 0; b < 20; b++) {
      const results = Array.from({ length: 500 }, (_, i) => wireResult(b * 500 + i, now));
      const replies = await send(evil, BigInt(b * 500 + 1), results);
      const reject = replies.find((r) => r.kind.case === "reject");
      expect(reject?.kind.value).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect((reject?.kind.value as { message: string }).message).toMatch(
        new RegExp(
          `^${b === 0 ? 400 : 500} of 500 results quarantined: results\\[\\d+\\]\\.target: agent evil-01 already has 100 distinct targets \\(\\[limits\\] max_targets_per_agent\\)`,
        ),
      );
      expect(replies.at(-1)?.kind).toMatchObject({ case: "ack", value: { upToSeq: BigInt((b + 1) * 500) } });
      // Interleaved, another site's agent is served as usual.
      expect((await send(berlin, berlinSeq, [wireResult(b % 10, now)])).map((r) => r.kind.case)).toEqual([
        "ack",
      ]);
      berlinSeq += 1n;
    }
    expect(await one(fx.sql`SELECT count(*)::int AS n FROM results WHERE agent_id = 'evil-01'`)).toBe(
      MAX_TARGETS,
    );
    expect(
      await one(fx.sql`SELECT count(*)::int AS n FROM quarantined_results WHERE agent_id = 'evil-01'`),
    ).toBe(9_900);
    expect(await one(fx.sql`SELECT count(*)::int AS n FROM targets WHERE site = 'evil'`)).toBe(MAX_TARGETS);
    expect(await one(fx.sql`SELECT count(*)::int AS n FROM results WHERE agent_id = 'berlin-01'`)).toBe(20);

    const { status: code, body } = await scrape();
    expect(code).toBe(200);
    expect(
      body.split("\n").filter((l) => l.startsWith("smb_service_state{") && l.includes('agent="evil-01"'))
        .length,
    ).toBe(MAX_TARGETS);
    expect(body).toContain(
      'smb_service_state{address="10.0.0.1",share="finance0",domain="CORP",site="berlin",agent="berlin-01"}',
    );
    // Bound: an ordinary target renders 126 lines, ~18.8 KB (smbprobe's five operations; 20 KB
    // allowed here), so 100 of evil's and 10 of berlin's are under 2.2 MB, and the fleet metrics
    // are a few KB. Without the cap the 10,000 targets would render ~188 MB.
    expect(Buffer.byteLength(body)).toBeLessThan(110 * 20_000 + 64 * 1024);
    evil.end();
    berlin.end();
    await Promise.all([evil.status, berlin.status]);
  });
});

describe("an agent that sends fields far over their limits", () => {
  it("has them quarantined (a long failure message stored cut), keeps its stream, and stays out of /metrics", async () => {
    const now = Date.now() - 5_000;
    const huge = "a".repeat(100_000);
    const evil = await connect("evil-02", "evil2", [{ ...wireResult(0).target, address: huge }]);
    // The oversized Hello target was ignored: no row, no series; counted.
    expect(await one(fx.sql`SELECT count(*)::int AS n FROM targets WHERE site = 'evil2'`)).toBe(0);
    const ignored = (await fx.metrics.helloTargetsIgnored.get()).values;
    expect(ignored.find((v) => v.labels["reason"] === "invalid")?.value).toBe(1);

    const results = [
      wireResult(0, now, { target: { ...wireResult(0).target, address: huge } }),
      wireResult(1, now, { healthy: false, failureClass: "unknown", failureMessage: "x".repeat(3 * MiB) }),
      wireResult(2, now, {
        target: {
          ...wireResult(2).target,
          labels: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, "v"])),
        },
      }),
      wireResult(3, now, { target: { ...wireResult(3).target, share: "s".repeat(256) } }),
      wireResult(4, now),
    ];
    const replies = await send(evil, 1n, results);
    expect(replies.map((r) => r.kind.case)).toEqual(["reject", "ack"]);
    expect(replies[0]?.kind.value).toMatchObject({
      code: status.INVALID_ARGUMENT,
      firstSeq: 1n,
      lastSeq: 4n,
      message:
        "3 of 5 results quarantined: results[0].target.address: too long: 100000 bytes (limit 255); " +
        "results[2].target.labels: 300 labels (limit 16); results[3].target.share: too long: 256 bytes (limit 255)",
    });
    const cut = await fx.sql`
      SELECT octet_length(failure_message) AS n, right(failure_message, 7) AS tail
      FROM results WHERE agent_id = 'evil-02' AND seq = 2`;
    expect(cut[0]).toEqual({ n: 1024, tail: "… [cut]" });
    expect(await one(fx.sql`SELECT count(*)::int AS n FROM results WHERE agent_id = 'evil-02'`)).toBe(2);
    // The stream is still up for valid data.
    expect((await send(evil, 6n, [wireResult(5, now)])).map((r) => r.kind.case)).toEqual(["ack"]);
    const { body } = await scrape();
    expect(body).not.toContain("aaaaaaaaaa");
    expect(body).not.toContain("xxxxxxxxxx");
    evil.end();
    await evil.status;
  });

  it("with every field at its limit, its series are capped by its render budget and counted", async () => {
    const now = Date.now() - 5_000;
    const long = (c: string, t: number) => `${t}`.padEnd(255, c);
    const results = Array.from({ length: MAX_TARGETS }, (_, t) =>
      wireResult(t, now, {
        target: { ...wireResult(t).target, address: long("a", t), share: long("s", t), domain: long("d", t) },
      }),
    );
    const evil = await connect("evil-03", "evil3");
    expect((await send(evil, 1n, results)).map((r) => r.kind.case)).toEqual(["ack"]);
    const { status: code, body } = await scrape();
    expect(code).toBe(200);
    // Unbudgeted these 100 targets render ~13 MB (126 lines of ~1 KB each per target).
    expect(targetBytes(body, "evil-03")).toBeLessThanOrEqual(PER_AGENT_RENDER_BYTES);
    expect(body).toMatch(/smbfleet_metrics_omitted_series\{site="evil3",agent="evil-03"\} [1-9]\d*/);
    // The others are whole: evil-01's 100 targets and berlin's 10.
    expect(
      body.split("\n").filter((l) => l.startsWith("smb_service_state{") && l.includes('agent="evil-01"'))
        .length,
    ).toBe(MAX_TARGETS);
    expect(body).not.toMatch(/smbfleet_metrics_omitted_series\{site="(evil|berlin)"/);
    // Bound: evil-03's budget plus the 2.2 MB of the first test plus the fleet metrics.
    expect(Buffer.byteLength(body)).toBeLessThan(PER_AGENT_RENDER_BYTES + 110 * 20_000 + 64 * 1024);
    evil.end();
    await evil.status;
  });
});
