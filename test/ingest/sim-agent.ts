// A simulated agent sender for fault tests and bench/ingest: results 1..total
// go out in batches with a window in flight; after any stream failure it
// reconnects and resumes after the Welcome's high-water mark, as the real
// sender does. Batches are assembled from pre-encoded results so that the
// client costs little CPU next to the aggregator it measures.
import { create, toBinary } from "@bufbuild/protobuf";
import { ResultSchema } from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import type { TestStream } from "./fixture.ts";
import { wireResult, type ResultInit } from "./results.ts";

export interface SimAgentOptions {
  site: string;
  agent: string;
  /** Results to deliver, seq 1..total. */
  total: number;
  batchSize: number;
  /** Batches sent and not yet acked. */
  window: number;
  open: () => Promise<TestStream>;
  /** Distinct targets the results cycle over. */
  targets?: number;
  /** Pause between reconnect attempts. */
  reconnectDelayMs?: number;
  /** Give up after this long. */
  deadlineMs?: number;
  /** When each result was started (by seq); default: a few seconds ago. */
  startedAt?: (seq: number) => number;
  onAck?: (upToSeq: number, latencyMs: number) => void;
}

function varint(n: bigint): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

function lengthDelimited(field: number, payload: Buffer): Buffer {
  return Buffer.concat([varint(BigInt((field << 3) | 2)), varint(BigInt(payload.length)), payload]);
}

/** Encodes AgentMessage{batch: Batch{first_seq, results}} from already-encoded Result messages. */
export function encodeBatch(firstSeq: bigint, encodedResults: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [varint(BigInt((1 << 3) | 0)), varint(firstSeq)];
  for (const r of encodedResults) parts.push(lengthDelimited(2, r));
  return lengthDelimited(2, Buffer.concat(parts));
}

export function encodeResult(r: ResultInit): Buffer {
  return Buffer.from(toBinary(ResultSchema, create(ResultSchema, r)));
}

export class SimAgent {
  readonly #o: SimAgentOptions;
  /** Highest sequence acknowledged. */
  acked = 0;
  reconnects = 0;
  readonly #sentAt = new Map<number, number>();

  constructor(options: SimAgentOptions) {
    this.#o = options;
  }

  #result(seq: number): Buffer {
    const targets = this.#o.targets ?? 10;
    const at = this.#o.startedAt?.(seq) ?? Date.now() - 5_000;
    return encodeResult(wireResult(seq % targets, at));
  }

  async run(): Promise<void> {
    const o = this.#o;
    const deadline = Date.now() + (o.deadlineMs ?? 120_000);
    // One encoded result per target is enough when the start time does not vary by seq.
    const shared =
      o.startedAt === undefined
        ? Array.from({ length: o.targets ?? 10 }, (_, t) => encodeResult(wireResult(t)))
        : null;
    const resultFor = (seq: number): Buffer => shared?.[seq % shared.length] ?? this.#result(seq);
    while (this.acked < o.total) {
      if (Date.now() > deadline) throw new Error(`${o.agent}: gave up at ack ${this.acked} of ${o.total}`);
      let s: TestStream | null = null;
      try {
        s = await o.open();
        s.send({ kind: { case: "hello", value: { site: o.site, agentId: o.agent, agentVersion: "sim" } } });
        const w = await s.next();
        if (w.kind.case !== "welcome") throw new Error(`expected Welcome, got ${w.kind.case}`);
        this.acked = Math.max(this.acked, Number(w.kind.value.highWaterSeq));
        let next = this.acked + 1;
        const inFlight: number[] = [];
        while (this.acked < o.total) {
          while (inFlight.length < o.window && next <= o.total) {
            const n = Math.min(o.batchSize, o.total - next + 1);
            const results: Buffer[] = [];
            for (let i = 0; i < n; i++) results.push(resultFor(next + i));
            s.send(encodeBatch(BigInt(next), results));
            this.#sentAt.set(next + n - 1, performance.now());
            inFlight.push(next + n - 1);
            next += n;
          }
          const m = await s.next(30_000);
          if (m.kind.case === "ack") {
            const up = Number(m.kind.value.upToSeq);
            this.acked = Math.max(this.acked, up);
            const sent = this.#sentAt.get(up);
            this.#sentAt.delete(up);
            if (sent !== undefined) o.onAck?.(up, performance.now() - sent);
            while (inFlight.length > 0 && inFlight[0]! <= up) inFlight.shift();
          } else if (m.kind.case === "reject") {
            throw new Error(`unexpected Reject ${m.kind.value.code}: ${m.kind.value.message}`);
          }
        }
        s.end();
        await s.status;
      } catch (err) {
        if (err instanceof Error && err.message.startsWith("unexpected Reject")) throw err;
        s?.cancel();
        this.reconnects += 1;
        await new Promise((r) => setTimeout(r, o.reconnectDelayMs ?? 250));
      }
    }
  }
}
