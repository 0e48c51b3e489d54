// A Batch as it arrived: the message bytes and where each Result lies in
// them, not decoded yet. grpc-js decodes a message when it arrives, and a
// stream keeps up to MAX_QUEUED_MESSAGES of them waiting for the database;
// decoded into protobuf objects, those batches lived long enough to be copied
// by every young-generation GC and then promoted (a third of the
// aggregator's CPU went to GC). Kept as bytes, a waiting batch is one Buffer
// and one Uint32Array, and each Result is read when its batch is stored
// (batch-reader.ts).
//
// Only the canonical encoding, which every protobuf encoder writes, is
// scanned here: AgentMessage holding field 2 alone, a Batch of field 1
// (first_seq, once) and field 2 (results). Anything else, an unknown field
// included, goes through the generated decoder, which defines the meaning
// (and the error message) of every other encoding.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import {
  AgentMessageSchema,
  Ingest,
  ResultSchema,
  type AgentMessage,
  type Batch,
} from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import { serverDefinition, type Decoded } from "../../../shared/grpc/service.ts";

export interface RawBatch {
  firstSeq: bigint;
  /** The bytes the results lie in. */
  bytes: Buffer;
  /** [start, end) of result i at 2i, 2i+1. */
  offsets: Uint32Array;
  readonly count: number;
}

/** What the ingest stream receives: any AgentMessage, with a Batch kept as bytes. */
export type IngestMessage =
  Exclude<AgentMessage["kind"], { case: "batch" }> | { case: "rawBatch"; value: RawBatch };

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** A varint of at most `maxBytes` bytes at pos, or -1 when longer or cut off. */
function varint(b: Buffer, pos: number, end: number, maxBytes: number, out: { pos: number }): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < maxBytes && pos < end; i++) {
    const byte = b[pos++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      out.pos = pos;
      return value;
    }
    scale *= 128;
  }
  return -1;
}

/** first_seq as a bigint (it is a uint64: up to 10 bytes), or null when malformed. */
function varint64(b: Buffer, pos: number, end: number, out: { pos: number }): bigint | null {
  let value = 0n;
  let shift = 0n;
  for (let i = 0; i < 10 && pos < end; i++) {
    const byte = b[pos++]!;
    value |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) {
      out.pos = pos;
      return BigInt.asUintN(64, value);
    }
    shift += 7n;
  }
  return null;
}

/** The batch in a canonically encoded AgentMessage, or null for the generated decoder to handle. */
export function scanBatch(b: Buffer): RawBatch | null {
  const at = { pos: 0 };
  // AgentMessage: exactly one field, 2 (batch), spanning the whole message.
  if (b.length < 1 || b[0] !== ((2 << 3) | WIRE_LEN)) return null;
  const len = varint(b, 1, b.length, 5, at);
  if (len < 0 || at.pos + len !== b.length) return null;
  let pos = at.pos;
  let firstSeq: bigint | null = null;
  const spans: number[] = [];
  while (pos < b.length) {
    const tag = b[pos++]!;
    if (tag === ((1 << 3) | WIRE_VARINT) && firstSeq === null) {
      firstSeq = varint64(b, pos, b.length, at);
      if (firstSeq === null) return null;
      pos = at.pos;
    } else if (tag === ((2 << 3) | WIRE_LEN)) {
      const n = varint(b, pos, b.length, 5, at);
      if (n < 0 || at.pos + n > b.length) return null;
      spans.push(at.pos, at.pos + n);
      pos = at.pos + n;
    } else {
      return null;
    }
  }
  return { firstSeq: firstSeq ?? 0n, bytes: b, offsets: Uint32Array.from(spans), count: spans.length / 2 };
}

/** A decoded Batch as a RawBatch: its results encoded once more (only non-canonical input gets here). */
export function rawBatchOf(batch: Batch): RawBatch {
  const parts = batch.results.map((r) => toBinary(ResultSchema, r));
  const offsets = new Uint32Array(parts.length * 2);
  let size = 0;
  parts.forEach((p, i) => {
    offsets[2 * i] = size;
    size += p.length;
    offsets[2 * i + 1] = size;
  });
  return { firstSeq: batch.firstSeq, bytes: Buffer.concat(parts, size), offsets, count: parts.length };
}

/** The message as the stream handles it. */
export function ingestMessage(m: AgentMessage): IngestMessage {
  return m.kind.case === "batch" ? { case: "rawBatch", value: rawBatchOf(m.kind.value) } : m.kind;
}

/**
 * The Ingest service definition for the server: shared/grpc/service.ts's,
 * with Stream's requests decoded to IngestMessage (a Batch scanned, not
 * decoded). Size limit and malformed input are answered as there.
 */
export function ingestServiceDefinition(maxMessageBytes: number): ServiceDefinition {
  const def = serverDefinition(Ingest, { maxMessageBytes });
  const stream = def["stream"] as MethodDefinition<unknown, unknown>;
  const generic = stream.requestDeserialize;
  const requestDeserialize = (bytes: Buffer): Decoded<IngestMessage> => {
    if (bytes.length <= maxMessageBytes) {
      const raw = scanBatch(bytes);
      if (raw !== null) return { ok: true, size: bytes.length, message: { case: "rawBatch", value: raw } };
    }
    const decoded = generic(bytes) as Decoded<AgentMessage>;
    return decoded.ok ? { ...decoded, message: ingestMessage(decoded.message) } : decoded;
  };
  return { ...def, stream: { ...stream, requestDeserialize } };
}

/** The generated decoder's verdict on bytes the scan accepted but a Result in them is not decodable. */
export function malformedReason(raw: RawBatch): string {
  try {
    fromBinary(AgentMessageSchema, raw.bytes);
  } catch (err) {
    return `malformed smbfleet.v1.AgentMessage: ${String(err)}`;
  }
  // The whole message decodes; only a Result was judged on its own. Say so plainly.
  return "malformed smbfleet.v1.AgentMessage: a result does not decode";
}
