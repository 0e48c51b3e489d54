// The agent's side of smbfleet.v1.Ingest/Stream. Batches are assembled from the
// buffer's stored Result bytes without decoding them: the bytes were encoded
// once when the result was buffered, and re-encoding 1M results on a drain
// would cost more CPU than sending them (6.5 µs vs ~0.1 µs a result).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  AgentMessageSchema,
  AggregatorMessageSchema,
  HeartbeatSchema,
  HelloSchema,
  Ingest,
  type AgentMessage,
  type AggregatorMessage,
} from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import type { TargetRef } from "../../shared/result.ts";
import { targetToWire } from "../../shared/wire/result-codec.ts";

/** /smbfleet.v1.Ingest/Stream */
export const STREAM_PATH = `/${Ingest.typeName}/${Ingest.method.stream.name}`;

/** What the stream carries outbound: a message, or a Batch already encoded as AgentMessage bytes. */
export type Outbound = AgentMessage | Uint8Array;

export function serializeOutbound(value: Outbound): Buffer {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return Buffer.from(toBinary(AgentMessageSchema, value));
}

export function deserializeInbound(bytes: Buffer): AggregatorMessage {
  return fromBinary(AggregatorMessageSchema, bytes);
}

// Protobuf wire format: tag = field << 3 | wire type; 0 varint, 2 length-delimited.
const AGENT_MESSAGE_BATCH_TAG = (2 << 3) | 2;
const BATCH_FIRST_SEQ_TAG = (1 << 3) | 0;
const BATCH_RESULTS_TAG = (2 << 3) | 2;

function varintLength(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  // Division rather than bit shifts: seqs may exceed 2^31 (JS shifts are 32-bit).
  while (n >= 128) {
    buf[at++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/** AgentMessage{batch: Batch{first_seq, results}} from already-encoded Result messages. */
export function encodeBatchMessage(firstSeq: number, results: readonly Uint8Array[]): Uint8Array {
  let batchLen = 1 + varintLength(firstSeq);
  for (const r of results) batchLen += 1 + varintLength(r.length) + r.length;
  const buf = Buffer.allocUnsafe(1 + varintLength(batchLen) + batchLen);
  buf[0] = AGENT_MESSAGE_BATCH_TAG;
  let at = writeVarint(buf, 1, batchLen);
  buf[at++] = BATCH_FIRST_SEQ_TAG;
  at = writeVarint(buf, at, firstSeq);
  for (const r of results) {
    buf[at++] = BATCH_RESULTS_TAG;
    at = writeVarint(buf, at, r.length);
    buf.set(r, at);
    at += r.length;
  }
  return buf;
}

export interface HelloFields {
  agentVersion: string;
  site: string;
  agentId: string;
  targets: readonly TargetRef[];
  backlog: number;
  dropped: number;
  nowMs: number;
}

export function helloMessage(h: HelloFields): AgentMessage {
  return create(AgentMessageSchema, {
    kind: {
      case: "hello",
      value: create(HelloSchema, {
        agentVersion: h.agentVersion,
        wallClockUnixMs: BigInt(Math.round(h.nowMs)),
        backlog: BigInt(h.backlog),
        targets: h.targets.map(targetToWire),
        site: h.site,
        agentId: h.agentId,
        dropped: BigInt(h.dropped),
      }),
    },
  });
}

export function heartbeatMessage(nowMs: number, backlog: number, dropped: number): AgentMessage {
  return create(AgentMessageSchema, {
    kind: {
      case: "heartbeat",
      value: create(HeartbeatSchema, {
        wallClockUnixMs: BigInt(Math.round(nowMs)),
        backlog: BigInt(backlog),
        dropped: BigInt(dropped),
      }),
    },
  });
}
