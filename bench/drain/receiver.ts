// A loopback stand-in for the aggregator when bench/drain runs without one:
// a grpc-js server with mTLS that decodes every message in full (as the
// aggregator must), checks every seq arrives, and acks each batch at once.
// It has no database, so it measures the agent's side of a drain.
import { create } from "@bufbuild/protobuf";
import { Server, type ServerCredentials, type ServerDuplexStream } from "@grpc/grpc-js";
import {
  AckSchema,
  AggregatorMessageSchema,
  Ingest,
  WelcomeSchema,
  type AgentMessage,
  type AggregatorMessage,
} from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import { serverDefinition, type Decoded } from "../../shared/grpc/service.ts";

export interface LoopbackReceiver {
  readonly url: string;
  /** Distinct seqs received. */
  received(): number;
  duplicates(): number;
  /** Resolves when every seq 1..expected arrived. */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function startLoopbackReceiver(
  credentials: ServerCredentials,
  expected: number,
): Promise<LoopbackReceiver> {
  const seen = new Uint8Array(expected + 1);
  let distinct = 0;
  let duplicates = 0;
  let highWater = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const server = new Server({ "grpc.max_receive_message_length": 16 * 1024 * 1024 });

  const handler = (call: ServerDuplexStream<Decoded<AgentMessage>, AggregatorMessage>): void => {
    const reply = (kind: AggregatorMessage["kind"]): void => {
      call.write(create(AggregatorMessageSchema, { kind }));
    };
    call.on("data", (decoded: Decoded<AgentMessage>) => {
      if (!decoded.ok) throw new Error(decoded.error);
      const kind = decoded.message.kind;
      if (kind.case === "hello") {
        reply({ case: "welcome", value: create(WelcomeSchema, { highWaterSeq: BigInt(highWater) }) });
      } else if (kind.case === "batch") {
        const first = Number(kind.value.firstSeq);
        const last = first + kind.value.results.length - 1;
        for (let seq = first; seq <= last; seq++) {
          if (seq > expected) continue;
          if (seen[seq] === 1) duplicates++;
          else {
            seen[seq] = 1;
            distinct++;
          }
        }
        highWater = Math.max(highWater, last);
        reply({ case: "ack", value: create(AckSchema, { upToSeq: BigInt(highWater) }) });
        if (distinct === expected) resolveDone();
      }
    });
    call.on("end", () => call.end());
    call.on("error", () => {});
  };

  server.addService(serverDefinition(Ingest, { maxMessageBytes: 16 * 1024 * 1024 }), { stream: handler });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    url: `127.0.0.1:${port}`,
    received: () => distinct,
    duplicates: () => duplicates,
    done,
    stop: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}
