// A small aggregator for the sender's tests: a real grpc-js server on loopback
// speaking smbfleet.v1.Ingest/Stream. It keeps a high-water mark like the real
// one (seqs at or below it are duplicates and not recorded again), acks after
// each batch (or when the test says), and records everything it saw so that
// tests can check order, duplicates, gaps, the window and heartbeats.
import { create } from "@bufbuild/protobuf";
import { Server, ServerCredentials, status, type ServerDuplexStream } from "@grpc/grpc-js";
import {
  AckSchema,
  AggregatorMessageSchema,
  Ingest,
  RejectSchema,
  WelcomeSchema,
  type AgentMessage,
  type AggregatorMessage,
  type Heartbeat,
  type Hello,
} from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import { serverDefinition, type Decoded } from "../../shared/grpc/service.ts";

export interface ReceivedBatch {
  stream: number;
  firstSeq: number;
  count: number;
}

export interface StubOptions {
  credentials?: ServerCredentials;
  highWater?: number;
  /** false: batches wait for ackPending(); true (default): acked as they arrive. */
  autoAck?: boolean;
  /**
   * Called for each batch before it is committed; return a Reject to refuse it
   * instead. goBack: refuse every later batch on that stream (with the same
   * code) until this one is resent, as the aggregator does after a rate-limit
   * refusal (aggregator/ingest/stream/agent-stream.ts #resendFrom). haltStream:
   * process nothing more on that stream at all.
   */
  onBatch?: (
    batch: ReceivedBatch,
  ) => { code: number; message: string; goBack?: boolean; haltStream?: boolean } | "close" | undefined;
}

type Call = ServerDuplexStream<Decoded<AgentMessage>, AggregatorMessage>;

export interface IngestStub {
  readonly url: string;
  readonly hellos: Hello[];
  readonly heartbeats: Heartbeat[];
  readonly batches: ReceivedBatch[];
  /** Every seq committed, in commit order, once each. */
  readonly committed: number[];
  /** Seqs received again after they were committed (resends). */
  readonly duplicates: number[];
  /** Messages that did not decode (the sender must never produce one). */
  readonly undecodable: string[];
  /** Batches refused because an earlier refused one had not been resent yet (goBack). */
  staleRefusals: number;
  /** Most batches received and not yet acked on one stream, ever. */
  readonly maxUnacked: number;
  readonly streams: number;
  highWater: number;
  /** Acks (commits) the oldest n pending batches of the open streams. */
  ackPending(n?: number): void;
  /** Commits the oldest n pending batches without acking them (an ack lost with the connection). */
  commitSilently(n: number): void;
  pendingCount(): number;
  /** Ends every open stream with UNAVAILABLE, as a restarting aggregator would. */
  closeStreams(): void;
  stop(): Promise<void>;
}

export async function startIngestStub(options: StubOptions = {}): Promise<IngestStub> {
  const server = new Server();
  const open = new Set<Call>();
  const pending: { call: Call; batch: ReceivedBatch }[] = [];
  const unackedByStream = new Map<number, number>();
  const resendFrom = new Map<number, { first: number; code: number }>();
  let streams = 0;
  let maxUnacked = 0;

  const send = (call: Call, kind: AggregatorMessage["kind"]): void => {
    call.write(create(AggregatorMessageSchema, { kind }));
  };

  const commit = (call: Call, batch: ReceivedBatch, sendAck = true): void => {
    for (let seq = batch.firstSeq; seq < batch.firstSeq + batch.count; seq++) {
      if (seq <= stub.highWater) stub.duplicates.push(seq);
      else stub.committed.push(seq);
    }
    stub.highWater = Math.max(stub.highWater, batch.firstSeq + batch.count - 1);
    unackedByStream.set(batch.stream, (unackedByStream.get(batch.stream) ?? 1) - 1);
    if (!sendAck || !call.writable) return;
    send(call, { case: "ack", value: create(AckSchema, { upToSeq: BigInt(stub.highWater) }) });
  };

  const handler = (call: Call): void => {
    const stream = ++streams;
    open.add(call);
    call.on("data", (decoded: Decoded<AgentMessage>) => {
      // A closed stream has ended for the agent; what was still in the pipe is not processed.
      if (!open.has(call)) return;
      if (!decoded.ok) {
        stub.undecodable.push(decoded.error);
        return;
      }
      const msg = decoded.message;
      switch (msg.kind.case) {
        case "hello":
          stub.hellos.push(msg.kind.value);
          send(call, {
            case: "welcome",
            value: create(WelcomeSchema, { highWaterSeq: BigInt(stub.highWater), serverVersion: "stub" }),
          });
          return;
        case "heartbeat":
          stub.heartbeats.push(msg.kind.value);
          return;
        case "batch": {
          const batch = {
            stream,
            firstSeq: Number(msg.kind.value.firstSeq),
            count: msg.kind.value.results.length,
          };
          stub.batches.push(batch);
          const unacked = (unackedByStream.get(stream) ?? 0) + 1;
          unackedByStream.set(stream, unacked);
          maxUnacked = Math.max(maxUnacked, unacked);
          const refuse = (code: number, message: string): void => {
            unackedByStream.set(stream, unacked - 1);
            send(call, {
              case: "reject",
              value: create(RejectSchema, {
                code,
                message,
                firstSeq: BigInt(batch.firstSeq),
                lastSeq: BigInt(batch.firstSeq + batch.count - 1),
              }),
            });
          };
          const waiting = resendFrom.get(stream);
          if (waiting !== undefined && batch.firstSeq > waiting.first) {
            stub.staleRefusals++;
            return refuse(waiting.code, `waiting for seq ${waiting.first} to be resent first`);
          }
          const verdict = options.onBatch?.(batch);
          if (verdict === "close") {
            open.delete(call);
            call.emit("error", { code: status.UNAVAILABLE, details: "stub closes the stream" });
            return;
          }
          if (verdict !== undefined) {
            if (verdict.haltStream === true) open.delete(call);
            if (verdict.goBack === true)
              resendFrom.set(stream, { first: batch.firstSeq, code: verdict.code });
            return refuse(verdict.code, verdict.message);
          }
          resendFrom.delete(stream);
          if (options.autoAck === false) pending.push({ call, batch });
          else commit(call, batch);
          return;
        }
        case undefined:
          return;
      }
    });
    const forget = (): void => {
      open.delete(call);
      for (let i = pending.length - 1; i >= 0; i--) if (pending[i]!.call === call) pending.splice(i, 1);
    };
    call.on("end", () => {
      forget();
      call.end();
    });
    call.on("error", forget);
    call.on("cancelled", forget);
  };

  server.addService(serverDefinition(Ingest, { maxMessageBytes: 8 * 1024 * 1024 }), {
    stream: handler,
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", options.credentials ?? ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });

  const stub: IngestStub = {
    url: `127.0.0.1:${port}`,
    hellos: [],
    heartbeats: [],
    batches: [],
    committed: [],
    duplicates: [],
    undecodable: [],
    staleRefusals: 0,
    get maxUnacked() {
      return maxUnacked;
    },
    get streams() {
      return streams;
    },
    highWater: options.highWater ?? 0,
    ackPending(n = Infinity) {
      for (let i = 0; i < n && pending.length > 0; i++) {
        const next = pending.shift()!;
        commit(next.call, next.batch);
      }
    },
    commitSilently(n) {
      for (let i = 0; i < n && pending.length > 0; i++) {
        const next = pending.shift()!;
        commit(next.call, next.batch, false);
      }
    },
    pendingCount: () => pending.length,
    closeStreams() {
      for (const call of [...open]) {
        open.delete(call);
        call.emit("error", { code: status.UNAVAILABLE, details: "stub closes the stream" });
      }
    },
    async stop() {
      stub.closeStreams();
      // Graceful first so clients see a clean GOAWAY; forced after a moment so a test never hangs here.
      await Promise.race([
        new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
        new Promise((resolve) => setTimeout(resolve, 2_000)),
      ]);
      server.forceShutdown();
    },
  };
  return stub;
}
