// Batches kept as bytes (raw-batch.ts) and read per stream (batch-reader.ts),
// against the generated decoder that defines them.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  AgentMessageSchema,
  ResultSchema,
  type AgentMessage,
} from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import type { Decoded } from "../../../shared/grpc/service.ts";
import { BatchReader } from "./batch-reader.ts";
import { CopyWriter } from "../store/copy-rows.ts";
import {
  ingestServiceDefinition,
  rawBatchOf,
  scanBatch,
  type IngestMessage,
  type RawBatch,
} from "./raw-batch.ts";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

function result(i: number, extra: Record<string, unknown> = {}) {
  return {
    target: { name: `t${i % 3}`, address: `10.0.0.${i % 3}`, port: 445, share: "s", labels: { a: "b" } },
    startedAtUnixMs: BigInt(NOW - 1000 - i),
    durationMs: 30 + i,
    operations: [{ operation: "read", samplesMs: [1.5, i], failures: 0 }],
    healthy: true,
    ...extra,
  };
}

function batchBytes(firstSeq: bigint, results: ReturnType<typeof result>[]): Buffer {
  return Buffer.from(
    toBinary(
      AgentMessageSchema,
      create(AgentMessageSchema, { kind: { case: "batch", value: { firstSeq, results } } }),
    ),
  );
}

function slices(raw: RawBatch): Buffer[] {
  return Array.from({ length: raw.count }, (_, i) =>
    raw.bytes.subarray(raw.offsets[2 * i], raw.offsets[2 * i + 1]),
  );
}

describe("scanBatch", () => {
  it("finds first_seq and each result's bytes in a canonical batch", () => {
    const results = Array.from({ length: 20 }, (_, i) => result(i));
    const bytes = batchBytes(2n ** 63n + 5n, results);
    const raw = scanBatch(bytes);
    expect(raw?.firstSeq).toBe(2n ** 63n + 5n);
    const decoded = fromBinary(AgentMessageSchema, bytes).kind.value as { results: unknown[] };
    expect(slices(raw!).map((s) => fromBinary(ResultSchema, s))).toEqual(decoded.results);
  });

  it("leaves every other message, and any unexpected field, to the generated decoder", () => {
    const hello = toBinary(
      AgentMessageSchema,
      create(AgentMessageSchema, { kind: { case: "hello", value: { site: "s" } } }),
    );
    expect(scanBatch(Buffer.from(hello))).toBeNull();
    const batch = batchBytes(1n, [result(0)]);
    // Field 3 (varint) inside the Batch: a newer agent's field.
    const inner = Buffer.concat([batch.subarray(2), Buffer.from([0x18, 0x01])]);
    expect(scanBatch(Buffer.concat([Buffer.from([0x12, inner.length]), inner]))).toBeNull();
    expect(scanBatch(Buffer.alloc(0))).toBeNull();
  });

  it("whatever it accepts of corrupted bytes decodes result by result as the whole message does", () => {
    const good = batchBytes(
      7n,
      Array.from({ length: 5 }, (_, i) => result(i)),
    );
    let accepted = 0;
    for (let at = 0; at < good.length; at++) {
      for (const value of [0x00, 0x7f, 0x80, 0xff, good[at]! ^ 0x08]) {
        const bytes = Buffer.from(good);
        bytes[at] = value;
        const raw = scanBatch(bytes);
        if (raw === null) continue;
        accepted++;
        let whole: AgentMessage;
        try {
          whole = fromBinary(AgentMessageSchema, bytes);
        } catch {
          // Then some result must fail on its own too, so the stream refuses the message.
          expect(
            slices(raw).some((s) => {
              try {
                fromBinary(ResultSchema, s);
                return false;
              } catch {
                return true;
              }
            }),
          ).toBe(true);
          continue;
        }
        expect(whole.kind.case).toBe("batch");
        const batch = whole.kind.value as { firstSeq: bigint; results: unknown[] };
        expect(raw.firstSeq).toBe(batch.firstSeq);
        expect(slices(raw).map((s) => fromBinary(ResultSchema, s))).toEqual(batch.results);
      }
    }
    expect(accepted).toBeGreaterThan(good.length);
  });
});

describe("ingestServiceDefinition", () => {
  const decode = ingestServiceDefinition(4096)["stream"]!.requestDeserialize as (
    b: Buffer,
  ) => Decoded<IngestMessage>;

  it("keeps a batch as bytes and decodes everything else", () => {
    const batch = decode(batchBytes(3n, [result(0), result(1)]));
    expect(batch.ok && batch.message.case).toBe("rawBatch");
    const hb = decode(
      Buffer.from(
        toBinary(
          AgentMessageSchema,
          create(AgentMessageSchema, { kind: { case: "heartbeat", value: { backlog: 4n } } }),
        ),
      ),
    );
    // Deferred: decoded when the stream asks, to the same message.
    const later = hb.ok && hb.message.case === "heartbeat" ? hb.message.value.decode() : null;
    expect(later?.ok && later.message.backlog).toBe(4n);
  });

  it("defers Hello and Heartbeat, and says what a malformed one is only when asked", () => {
    const hello = decode(
      Buffer.from(
        toBinary(
          AgentMessageSchema,
          create(AgentMessageSchema, { kind: { case: "hello", value: { agentId: "paris-01" } } }),
        ),
      ),
    );
    const h = hello.ok && hello.message.case === "hello" ? hello.message.value.decode() : null;
    expect(h?.ok && h.message.agentId).toBe("paris-01");
    // Field 1, length 2, then an invalid wire type inside: scanned as Hello, refused on decode.
    const bad = decode(Buffer.from([0x0a, 0x02, 0x0f, 0x00]));
    expect(bad.ok && bad.message.case).toBe("hello");
    const d = bad.ok && bad.message.case === "hello" ? bad.message.value.decode() : null;
    expect(d).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^malformed smbfleet\.v1\.AgentMessage: /) as unknown,
    });
    // Two fields (Hello, then Heartbeat): not canonical, decoded at once; the last wins as protobuf says.
    const two = decode(Buffer.from([0x0a, 0x00, 0x1a, 0x00]));
    expect(two.ok && two.message.case).toBe("heartbeat");
  });

  it("answers oversized and malformed messages as the generic decoder does", () => {
    const big = decode(
      batchBytes(
        1n,
        Array.from({ length: 100 }, (_, i) => result(i)),
      ),
    );
    expect(big).toMatchObject({
      ok: false,
      error: expect.stringMatching(/over the limit of 4096$/) as unknown,
    });
    const bad = decode(Buffer.from([0x7f, 0xff, 0xff]));
    expect(bad).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^malformed smbfleet\.v1\.AgentMessage: /) as unknown,
    });
  });

  it("turns a batch only the generated decoder reads into the same raw form", () => {
    const batch = create(AgentMessageSchema, {
      kind: { case: "batch", value: { firstSeq: 9n, results: [result(0), result(1)] } },
    });
    const raw = rawBatchOf(batch.kind.value as never);
    expect(raw.firstSeq).toBe(9n);
    expect(slices(raw).map((s) => fromBinary(ResultSchema, s))).toEqual(
      (batch.kind.value as { results: unknown[] }).results,
    );
  });
});

describe("BatchReader", () => {
  const limits = { maxFutureSkewMs: 300_000, lateAfterMs: 120_000 };

  it("reads valid results into rows and quarantines invalid ones with validate.ts's reason and their bytes", () => {
    const results = [
      result(0),
      result(1, { operations: [{ operation: "foo", samplesMs: [1], failures: 0 }] }),
      result(2, { failureMessage: "ünïcode" }),
      result(3, { durationMs: -1 }),
    ];
    const raw = scanBatch(batchBytes(10n, results))!;
    const read = new BatchReader().read(raw, NOW, limits, new CopyWriter());
    if (!read.ok) throw new Error(read.reason);
    expect(read.rows.map((r) => r.seq)).toEqual([10n, 12n]);
    expect(read.invalid.map((q) => [q.seq, q.reason])).toEqual([
      [11n, 'results[1].operations[0].operation: unknown operation "foo"'],
      [13n, "results[3].duration_ms: negative latency -1"],
    ]);
    expect(Buffer.from(read.invalid[0]!.raw)).toEqual(slices(raw)[1]);
    // Rows of the same target share one target object (the store resolves it once).
    const again = new BatchReader().read(
      scanBatch(batchBytes(1n, [result(0), result(3)]))!,
      NOW,
      limits,
      new CopyWriter(),
    );
    expect(again.ok && again.rows[0]!.target === again.rows[1]!.target).toBe(true);
  });

  it("refuses the whole message when a result does not decode", () => {
    const bytes = batchBytes(1n, [result(0), result(1)]);
    const raw = scanBatch(bytes)!;
    // Make the second result's first tag an invalid wire type (7).
    bytes[raw.offsets[2]!] = 0x0f;
    const read = new BatchReader().read(raw, NOW, limits, new CopyWriter());
    expect(read).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^malformed smbfleet\.v1\.AgentMessage: /) as unknown,
    });
  });
});
