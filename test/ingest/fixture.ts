// An aggregator ingest server on loopback backed by a real PostgreSQL, and a
// raw grpc-js client for it whose serializer passes Buffers through, so a
// test can send well-formed messages and garbage on the same stream.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Client,
  credentials,
  type ChannelCredentials,
  type ClientDuplexStream,
  type StatusObject,
} from "@grpc/grpc-js";
import {
  AgentMessageSchema,
  AggregatorMessageSchema,
  type AggregatorMessage,
} from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import { silentLogger } from "../../shared/logger.ts";
import { Secret } from "../../shared/secret.ts";
import { clientCredentials, serverCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles } from "../../shared/tls/files.ts";
import { initCa, issueAgent, issueServer } from "../../shared/tls/pki.ts";
import { closeDatabase, connectDatabase, type Db } from "../../aggregator/db/connect.ts";
import { migrate } from "../../aggregator/db/migrate.ts";
import { AggregatorMetrics } from "../../aggregator/metrics/aggregator-metrics.ts";
import { metricsObserver } from "../../aggregator/metrics/ingest-observer.ts";
import type { IngestSettings } from "../../aggregator/ingest/stream/agent-stream.ts";
import { AgentRateLimits } from "../../aggregator/ingest/stream/rate-limit.ts";
import { startIngestServer, type RunningIngestServer } from "../../aggregator/ingest/stream/server.ts";
import { TargetCache } from "../../aggregator/ingest/store/targets.ts";
import { BatchPool } from "../../aggregator/ingest/store/batch-pool.ts";

/** Batch connections of a test ingest server, as [database] pool_size. */
const BATCH_CONNECTIONS = 4;
import type { RunningPostgres } from "../harness/postgres.ts";

export const STREAM_PATH = "/smbfleet.v1.Ingest/Stream";

export interface FixtureOptions {
  tls?: boolean;
  settings?: Partial<IngestSettings>;
  ratePerSecond?: number;
}

export interface IngestFixture {
  sql: Db;
  url: string;
  server: RunningIngestServer;
  metrics: AggregatorMetrics;
  /** PKI dir (tls only): ca.pem, server.pem, agents/<agent>.pem … */
  pkiDir: string | null;
  /** Opens a stream as `agent` of `site` (its certificate under tls). */
  open(agent: string, site: string, opts?: { creds?: ChannelCredentials }): Promise<TestStream>;
  close(): Promise<void>;
}

export const DEFAULT_TEST_SETTINGS: IngestSettings = {
  insecure: true,
  maxFutureSkewMs: 300_000,
  clockSkewWarnMs: 30_000,
  lateAfterMs: 120_000,
  disabledAgents: new Set(),
  maxMessageBytes: 64 * 1024,
};

/** A fresh database `dbName` on `pg`, migrated, with an ingest server on it. */
export async function startIngestFixture(
  pg: RunningPostgres,
  dbName: string,
  opts: FixtureOptions = {},
): Promise<IngestFixture> {
  return startIngestOn(await pg.createDatabase(dbName), opts);
}

/** An ingest server on an existing database (a second replica, say). */
export async function startIngestOn(url: string, opts: FixtureOptions = {}): Promise<IngestFixture> {
  const sql = connectDatabase({ url: new Secret(url), poolSize: 4 });
  const batchSql = connectDatabase({ url: new Secret(url), poolSize: BATCH_CONNECTIONS });
  await migrate(sql);
  const metrics = new AggregatorMetrics({ processMetrics: false });
  const tls = opts.tls === true;
  const settings: IngestSettings = { ...DEFAULT_TEST_SETTINGS, insecure: !tls, ...opts.settings };
  let pkiDir: string | null = null;
  let serverCreds = null;
  if (tls) {
    pkiDir = mkdtempSync(join(tmpdir(), "smbfleet-pki-"));
    await initCa(pkiDir);
    const files = await issueServer(pkiDir, { dns: ["localhost"], ip: ["127.0.0.1"] });
    serverCreds = serverCredentials(await loadTlsFiles(files));
  }
  const server = await startIngestServer({
    listen: { host: "127.0.0.1", port: 0 },
    credentials: serverCreds,
    maxMessageBytes: settings.maxMessageBytes,
    deps: {
      sql,
      batches: new BatchPool(batchSql, BATCH_CONNECTIONS),
      targets: new TargetCache(),
      metrics,
      observers: [metricsObserver(metrics)],
      logger: silentLogger(),
      limits: new AgentRateLimits(opts.ratePerSecond ?? 1_000_000),
      settings,
      serverVersion: "test",
    },
  });
  const clients: Client[] = [];
  return {
    sql,
    url,
    server,
    metrics,
    pkiDir,
    async open(agent, site, o = {}) {
      let creds = o.creds;
      if (creds === undefined) {
        creds = credentials.createInsecure();
        if (pkiDir !== null) {
          const files = await issueAgent(pkiDir, { site, agent, force: true });
          creds = clientCredentials(await loadTlsFiles(files));
        }
      }
      const client = new Client(`127.0.0.1:${server.port}`, creds);
      clients.push(client);
      return new TestStream(client);
    },
    async close() {
      for (const c of clients) c.close();
      await server.close(2_000);
      await Promise.all([closeDatabase(sql), closeDatabase(batchSql)]);
      if (pkiDir !== null) rmSync(pkiDir, { recursive: true, force: true });
    },
  };
}

type AgentInit = MessageInitShape<typeof AgentMessageSchema>;

/** One bidi stream; replies queue up and are taken in order with next(). */
export class TestStream {
  readonly #call: ClientDuplexStream<Buffer, AggregatorMessage>;
  readonly #replies: AggregatorMessage[] = [];
  #waiter: (() => void) | null = null;
  #ended = false;
  #lastWrite: Promise<void> = Promise.resolve();
  readonly status: Promise<StatusObject>;

  constructor(client: Client) {
    this.#call = client.makeBidiStreamRequest(
      STREAM_PATH,
      (b: Buffer) => b,
      (b: Buffer) => fromBinary(AggregatorMessageSchema, b),
    );
    this.#call.on("data", (m: AggregatorMessage) => {
      this.#replies.push(m);
      this.#waiter?.();
    });
    this.status = new Promise((resolve) => this.#call.on("status", resolve));
    // Errors arrive as the final status; without a listener they would be thrown.
    this.#call.on("error", () => {});
    void this.status.then(() => {
      this.#ended = true;
      this.#waiter?.();
    });
  }

  /** Sends a message (init object) or raw bytes as they are. */
  send(message: AgentInit | Buffer): void {
    const bytes = Buffer.isBuffer(message)
      ? message
      : Buffer.from(toBinary(AgentMessageSchema, create(AgentMessageSchema, message)));
    this.#lastWrite = new Promise((resolve) => this.#call.write(bytes, () => resolve()));
  }

  /** Resolves once everything sent so far has been handed to the connection. */
  written(): Promise<void> {
    return this.#lastWrite;
  }

  /** The next reply; throws if none arrives in time or the stream ended first. */
  async next(timeoutMs = 10_000): Promise<AggregatorMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#replies.shift();
      if (m !== undefined) return m;
      if (this.#ended) throw new Error("stream ended before the next reply");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          this.#waiter = null;
          resolve();
        };
      });
    }
  }

  /** Replies received and not yet taken. */
  get pending(): number {
    return this.#replies.length;
  }

  end(): void {
    this.#call.end();
  }

  cancel(): void {
    this.#call.cancel();
  }
}
