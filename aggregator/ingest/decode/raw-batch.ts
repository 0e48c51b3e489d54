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
//
// Hello (field 1) and Heartbeat (field 3) alone are not decoded here either:
// the stream decodes them once the agent's rate limit for that kind let them
// through (stream/quotas.ts), so a flood of them costs a byte compare each.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import {
  AgentMessageSchema,
  Ingest,
  ResultSchema,
  type AgentMessage,
  type Batch,
  type Heartbeat,
  type Hello,
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

/** A message decoded when the stream asks: the message, or why its bytes are not one. */
export interface Deferred<T> {
  decode(): { ok: true; message: T } | { ok: false; error: string };
}

/** What the ingest stream receives: any AgentMessage, a Batch kept as bytes, Hello and Heartbeat deferred. */
export type IngestMessage =
  | { case: "hello"; value: Deferred<Hello> }
  | { case: "heartbeat"; value: Deferred<Heartbeat> }
  | { case: "rawBatch"; value: RawBatch }
  | { case: undefined; value?: undefined };

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

type DeferredKinds = { hello: Hello; heartbeat: Heartbeat };

const HELLO_TAG = (1 << 3) | WIRE_LEN;
const HEARTBEAT_TAG = (3 << 3) | WIRE_LEN;

/**
 * An AgentMessage holding Hello or Heartbeat alone (canonically encoded),
 * deferred: decoded later, as the generated decoder would decode all of it.
 * null for anything else.
 */
export function scanDeferred(b: Buffer): IngestMessage | null {
  if (b.length < 1 || (b[0] !== HELLO_TAG && b[0] !== HEARTBEAT_TAG)) return null;
  const at = { pos: 0 };
  const len = varint(b, 1, b.length, 5, at);
  if (len < 0 || at.pos + len !== b.length) return null;
  if (b[0] === HELLO_TAG) return { case: "hello", value: deferred(b, "hello") };
  return { case: "heartbeat", value: deferred(b, "heartbeat") };
}

function deferred<K extends keyof DeferredKinds>(b: Buffer, kind: K): Deferred<DeferredKinds[K]> {
  return {
    decode() {
      try {
        const m = fromBinary(AgentMessageSchema, b);
        // The first field says which kind; the scan checked it is the only one.
        if (m.kind.case !== kind) throw new Error(`expected ${kind}`);
        return { ok: true, message: m.kind.value as DeferredKinds[K] };
      } catch (err) {
        return { ok: false, error: `malformed smbfleet.v1.AgentMessage: ${String(err)}` };
      }
    },
  };
}

/** A decoded value as a Deferred that was decoded already. */
function decoded<T>(message: T): Deferred<T> {
  return { decode: () => ({ ok: true, message }) };
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
  switch (m.kind.case) {
    case "batch":
      return { case: "rawBatch", value: rawBatchOf(m.kind.value) };
    case "hello":
      return { case: "hello", value: decoded(m.kind.value) };
    case "heartbeat":
      return { case: "heartbeat", value: decoded(m.kind.value) };
    case undefined:
      return { case: undefined };
  }
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
      const later = scanDeferred(bytes);
      if (later !== null) return { ok: true, size: bytes.length, message: later };
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
