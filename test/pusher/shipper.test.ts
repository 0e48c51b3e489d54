// The sender against a real gRPC server on loopback (test/pusher/ingest-stub.ts):
// delivery order, deletion on ack, resume after a broken stream, the Welcome
// high-water mark, the window, heartbeats and rejects.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openBuffer, type ResultBuffer } from "../../agent/buffer/buffer.ts";
import { sampleResult } from "../../agent/buffer/testdata/sample-result.ts";
import type { ShipperOptions } from "../../agent/pusher/options.ts";
import { startShipper, type Shipper } from "../../agent/pusher/shipper.ts";
import type { BufferLimits } from "../../shared/config/types.ts";
import { ResultSchema } from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import { silentLogger } from "../../shared/logger.ts";
import { resultToWire } from "../../shared/wire/result-codec.ts";
import { until } from "../harness/wait.ts";
import { startIngestStub, type IngestStub, type StubOptions } from "./ingest-stub.ts";

/** Short delays so that reconnects happen within a test's time. */
const FAST: Partial<ShipperOptions> = {
  backoff: { initialMs: 50, maxMs: 200, factor: 2, jitter: 0.2 },
  retryBackoff: { initialMs: 50, maxMs: 200, factor: 2, jitter: 0.2 },
  connectTimeoutMs: 2_000,
  welcomeTimeoutMs: 2_000,
  stopGraceMs: 300,
};
const ROOMY: BufferLimits = { maxBytes: 1 << 30, maxAgeSeconds: 86_400 };

let dir: string;
let buffer: ResultBuffer;
let stub: IngestStub | undefined;
let shipper: Shipper | undefined;
let abort: AbortController;

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

async function setUp(opts: {
  stub?: StubOptions;
  shipper?: Partial<ShipperOptions>;
  limits?: BufferLimits;
  buffered?: number;
}): Promise<{ stub: IngestStub; shipper: Shipper }> {
  buffer = openBuffer(join(dir, "buffer.db"), opts.limits ?? ROOMY);
  if (opts.buffered) buffer.appendMany(range(1, opts.buffered).map((i) => sampleResult(i)));
  stub = await startIngestStub(opts.stub);
  shipper = startShipper(
    {
      buffer,
      aggregator: { url: stub.url, ca: null, cert: null, key: null, insecure: true },
      site: "paris",
      agentId: "paris-01",
      agentVersion: "0.0.0-test",
      targets: [sampleResult(0).target],
      logger: silentLogger(),
      options: { ...FAST, ...opts.shipper },
    },
    abort.signal,
  );
  return { stub, shipper };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "smbfleet-shipper-"));
  abort = new AbortController();
});
afterEach(async () => {
  await shipper?.stop();
  await stub?.stop();
  buffer.close();
  shipper = undefined;
  stub = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe("delivery", () => {
  it("delivers every result once, in order, many per batch, and deletes what was acked", async () => {
    const { stub, shipper } = await setUp({ buffered: 1200, shipper: { maxBatchResults: 100 } });
    await until("connected", () => shipper.connected());
    for (let i = 1201; i <= 1250; i++) shipper.accept(sampleResult(i));
    await until("all committed", () => stub.committed.length === 1250);
    expect(stub.committed).toEqual(range(1, 1250));
    expect(stub.duplicates).toEqual([]);
    expect(stub.undecodable).toEqual([]);
    expect(Math.max(...stub.batches.map((b) => b.count))).toBe(100);
    await until("buffer empty", () => buffer.backlog().count === 0);
    expect(shipper.status()).toMatchObject({ ackedSeq: 1250, ackedResults: 1250, backlog: 0, connects: 1 });

    const [hello] = stub.hellos;
    expect(hello?.site).toBe("paris");
    expect(hello?.agentId).toBe("paris-01");
    expect(hello?.backlog).toBe(1200n);
    expect(hello?.targets.map((t) => t.share)).toEqual(["share0"]);
  });

  it("Welcome's high-water mark deletes what the aggregator has, which is not resent", async () => {
    const { stub } = await setUp({ buffered: 1000, stub: { highWater: 600 } });
    await until("all committed", () => stub.committed.length === 400);
    expect(stub.committed).toEqual(range(601, 1000));
    expect(Math.min(...stub.batches.map((b) => b.firstSeq))).toBe(601);
    expect(stub.duplicates).toEqual([]);
    await until("buffer empty", () => buffer.backlog().count === 0);
  });

  it("continues after a high-water mark this buffer never reached (buffer file replaced)", async () => {
    const { stub, shipper } = await setUp({ buffered: 10, stub: { highWater: 5000 } });
    await until("all committed", () => stub.committed.length === 10);
    expect(stub.committed).toEqual(range(5001, 5010));
    shipper.accept(sampleResult(11));
    await until("the next one", () => stub.committed.length === 11);
    expect(stub.committed[10]).toBe(5011);
  });
});

describe("broken streams", () => {
  it("reconnects and resumes after the server closes the stream mid-way: no gaps", async () => {
    let seen = 0;
    const { stub, shipper } = await setUp({
      buffered: 2000,
      shipper: { maxBatchResults: 100 },
      // Close on the 3rd, 8th and 12th batch received: before they are committed.
      stub: { onBatch: () => ([3, 8, 12].includes(++seen) ? "close" : undefined) },
    });
    await until("all committed", () => stub.committed.length === 2000, 20_000);
    expect(stub.committed).toEqual(range(1, 2000));
    expect(stub.streams).toBeGreaterThanOrEqual(4);
    expect(shipper.status().connects).toBeGreaterThanOrEqual(4);
    await until("buffer empty", () => buffer.backlog().count === 0);
  });

  it("after a broken stream, resends what was sent and not committed, and skips what was committed unacked", async () => {
    const { stub } = await setUp({
      buffered: 500,
      shipper: { maxBatchResults: 50 },
      stub: { autoAck: false },
    });
    await until("window full", () => stub.pendingCount() === 8); // 1..400 sent
    stub.ackPending(3); // 1..150 committed and acked
    await until("acks applied", () => buffer.backlog().count === 350);
    stub.commitSilently(2); // 151..250 committed, the acks lost with the stream
    stub.closeStreams(); // 251..400 sent, never committed
    await until("second stream", () => stub.streams === 2 && stub.pendingCount() === 5);
    // Welcome's high-water mark (250) told the sender what the aggregator has.
    expect(stub.batches.filter((b) => b.stream === 2)[0]?.firstSeq).toBe(251);
    expect(buffer.backlog().count).toBe(250);
    stub.ackPending();
    await until("all committed", () => stub.committed.length === 500);
    expect(stub.committed).toEqual(range(1, 500));
    expect(stub.duplicates).toEqual([]);
    await until("buffer empty", () => buffer.backlog().count === 0);
  });

  it("ends a stream whose acks stop coming and reconnects", async () => {
    const { stub, shipper } = await setUp({
      buffered: 100,
      shipper: { ackTimeoutMs: 300, maxBatchResults: 10 },
      stub: { autoAck: false },
    });
    await until("a second stream after the ack timeout", () => stub.streams >= 2);
    expect(shipper.status().ackedSeq).toBe(0);
    expect(buffer.backlog().count).toBe(100); // nothing acked, nothing deleted
  });
});

describe("flow control", () => {
  it("never has more than the window unacked, and sends more as acks arrive", async () => {
    const { stub } = await setUp({
      buffered: 300,
      shipper: { window: 3, maxBatchResults: 10, heartbeatIntervalMs: 50 },
      stub: { autoAck: false },
    });
    await until("window full", () => stub.batches.length === 3);
    // A sender ignoring the window would send the 4th batch at once, behind the
    // 3rd; two heartbeats on the same stream after it show that it had the time.
    const heartbeats = stub.heartbeats.length;
    await until("two heartbeats after the window filled", () => stub.heartbeats.length >= heartbeats + 2);
    expect(stub.batches.length).toBe(3);
    stub.ackPending(1);
    await until("one more batch", () => stub.batches.length === 4);
    await until(
      "all 300 committed as acks arrive",
      () => {
        stub.ackPending();
        return stub.committed.length === 300;
      },
      { pollMs: 5, detail: () => ({ committed: stub.committed.length, batches: stub.batches.length }) },
    );
    expect(stub.committed).toEqual(range(1, 300));
    expect(stub.maxUnacked).toBe(3);
  });

  it("packs batches up to maxBatchBytes", async () => {
    const sizes = range(1, 100).map((i) => toBinary(ResultSchema, resultToWire(sampleResult(i))).length);
    const { stub } = await setUp({ buffered: 100, shipper: { maxBatchBytes: 3_000 } });
    await until("all committed", () => stub.committed.length === 100);
    for (const b of stub.batches) {
      const bytes = sizes.slice(b.firstSeq - 1, b.firstSeq - 1 + b.count).reduce((a, n) => a + n, 0);
      expect(bytes).toBeLessThanOrEqual(3_000);
      // Full: one more result would not have fitted (unless it was the last batch).
      if (b.firstSeq + b.count <= 100)
        expect(bytes + sizes[b.firstSeq - 1 + b.count]!).toBeGreaterThan(3_000);
    }
    expect(stub.batches.length).toBeGreaterThan(5);
  });
});

describe("heartbeats and rejects", () => {
  it("heartbeats carry the backlog and the dropped count", async () => {
    const { stub, shipper } = await setUp({
      limits: { maxBytes: 20_000, maxAgeSeconds: 86_400 },
      buffered: 200,
      shipper: { heartbeatIntervalMs: 100 },
      stub: { autoAck: false },
    });
    expect(buffer.dropped()).toBeGreaterThan(0);
    await until("two heartbeats", () => stub.heartbeats.length >= 2);
    const last = stub.heartbeats[stub.heartbeats.length - 1]!;
    expect(last.backlog).toBe(BigInt(buffer.backlog().count));
    expect(last.dropped).toBe(BigInt(buffer.dropped()));
    expect(stub.hellos[0]?.dropped).toBe(BigInt(buffer.dropped()));
    expect(Math.abs(Number(last.wallClockUnixMs) - Date.now())).toBeLessThan(5_000);
    expect(shipper.status().dropped).toBe(buffer.dropped());
  });

  it("never resends a batch refused for good; one acked past counts as delivered, one never acked as rejected", async () => {
    const { stub, shipper } = await setUp({
      buffered: 300,
      shipper: { maxBatchResults: 100 },
      stub: {
        onBatch: (b) =>
          b.firstSeq === 101 || b.firstSeq === 201
            ? { code: status.INVALID_ARGUMENT, message: "results[3].operations[0]: bad" }
            : undefined,
      },
    });
    await until("the rest committed", () => stub.committed.length === 100);
    await until("both refusals", () => shipper.status().rejects === 2);
    expect(stub.batches.map((b) => b.firstSeq)).toEqual([1, 101, 201]);
    shipper.accept(sampleResult(301)); // acked past 101..300: the aggregator's word covers them
    await until("the new one", () => stub.committed.length === 101);
    await until("buffer empty", () => buffer.backlog().count === 0);
    // 101..300 stayed buffered until then but were not resent on this stream:
    // a resend would have gone out before 301, which comes after them.
    expect(stub.batches.map((b) => b.firstSeq)).toEqual([1, 101, 201, 301]);
    expect(stub.committed).toEqual([...range(1, 100), 301]);
    expect(shipper.status()).toMatchObject({ rejects: 2, rejected: 0 });
  });

  it("refused for good and never acked: discarded when the stream ends, so never resent", async () => {
    const { stub, shipper } = await setUp({
      buffered: 200,
      shipper: { maxBatchResults: 100 },
      stub: {
        onBatch: (b) => (b.firstSeq === 101 ? { code: status.INVALID_ARGUMENT, message: "bad" } : undefined),
      },
    });
    await until("refused", () => shipper.status().rejects === 1 && stub.committed.length === 100);
    stub.closeStreams();
    await until("reconnected", () => stub.hellos.length === 2 && shipper.connected());
    expect(buffer.backlog().count).toBe(0);
    expect(shipper.status().rejected).toBe(100);
    expect(stub.batches.filter((b) => b.firstSeq === 101)).toHaveLength(1);
  });

  it("rate limit: a batch refused for now is resent on the same stream, later ones in flight too, in order", async () => {
    let n = 0;
    const { stub, shipper } = await setUp({
      buffered: 3000,
      shipper: { maxBatchResults: 100 },
      stub: {
        // Every third batch the stub looks at is refused once, go-back-N as the aggregator does.
        onBatch: () =>
          ++n % 3 === 0
            ? { code: status.RESOURCE_EXHAUSTED, message: "rate limit", goBack: true }
            : undefined,
      },
    });
    await until("all committed", () => stub.committed.length === 3000, 30_000);
    expect(stub.committed).toEqual(range(1, 3000));
    expect(stub.duplicates).toEqual([]);
    expect(stub.streams).toBe(1);
    expect(stub.staleRefusals).toBeGreaterThan(0); // batches behind a refused one were refused and resent
    expect(shipper.status().rejected).toBe(0);
    await until("buffer empty", () => buffer.backlog().count === 0);
  });

  it("gives up on a batch refused with an unexpected code after a few tries", async () => {
    const { stub, shipper } = await setUp({
      buffered: 30,
      shipper: { maxBatchResults: 10 },
      stub: {
        onBatch: (b) =>
          b.firstSeq === 11 ? { code: status.INTERNAL, message: "boom", haltStream: true } : undefined,
      },
    });
    await until("the rest committed", () => stub.committed.length === 20);
    expect(stub.committed).toEqual([...range(1, 10), ...range(21, 30)]);
    expect(stub.batches.filter((b) => b.firstSeq === 11).length).toBe(4); // 1 + MAX_LIMITED_RETRIES
    expect(shipper.status().rejected).toBe(10);
  });
});

describe("stopping", () => {
  it("stop() ends the stream; results accepted afterwards stay buffered for the next run", async () => {
    const { stub, shipper } = await setUp({ buffered: 10 });
    await until("all committed", () => stub.committed.length === 10);
    await shipper.stop();
    expect(shipper.connected()).toBe(false);
    // stop() resolved after its send loop ended: nothing is left to send this.
    shipper.accept(sampleResult(11));
    expect(shipper.status()).toMatchObject({ connected: false, sentBatches: stub.batches.length });
    expect(stub.committed.length).toBe(10);
    expect(buffer.backlog().count).toBe(1);
  });

  it("the abort signal stops it too, also while it waits to reconnect", async () => {
    const backoffMs = 60_000;
    const { stub, shipper } = await setUp({
      buffered: 5,
      shipper: { backoff: { initialMs: backoffMs, maxMs: backoffMs, factor: 1, jitter: 0 } },
    });
    await until("all committed", () => stub.committed.length === 5);
    stub.closeStreams();
    await until("disconnected", () => !shipper.connected());
    abort.abort();
    const t0 = Date.now();
    await shipper.stop();
    // Not the reconnect backoff run out: the abort cut the wait short.
    expect(Date.now() - t0).toBeLessThan(backoffMs / 2);
  });
});
