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
import { silentLogger, type Logger } from "../../shared/logger.ts";
import { Secret } from "../../shared/secret.ts";
import { clientCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles } from "../../shared/tls/files.ts";
import { initCa, issueAgent, issueServer } from "../../shared/tls/pki.ts";
import { closeDatabase, connectDatabase, type Db } from "../../aggregator/db/connect.ts";
import { migrateUrl } from "../../aggregator/db/migrate.ts";
import { AggregatorMetrics, type MetricsOptions } from "../../aggregator/metrics/aggregator-metrics.ts";
import { metricsObserver } from "../../aggregator/metrics/ingest-observer.ts";
import type { IngestSettings } from "../../aggregator/ingest/stream/agent-stream.ts";
import { AgentRateLimits } from "../../aggregator/ingest/stream/rate-limit.ts";
import {
  AgentQuotas,
  DEFAULT_INGEST_LIMITS,
  type IngestLimits,
} from "../../aggregator/ingest/stream/quotas.ts";
import {
  startIngestServer,
  type ConnectionLimits,
  type RunningIngestServer,
} from "../../aggregator/ingest/stream/server.ts";
import { TargetCache } from "../../aggregator/ingest/store/targets.ts";
import { BatchPool } from "../../aggregator/ingest/store/batch-pool.ts";
import { RevocationWatch } from "../../aggregator/ingest/admission/revocation-watch.ts";
import { recordPaths } from "../../shared/tls/records.ts";

/** Batch connections of a test ingest server, as [database] pool_size. */
const BATCH_CONNECTIONS = 4;
import type { RunningPostgres } from "../harness/postgres.ts";

export const STREAM_PATH = "/smbfleet.v1.Ingest/Stream";

export interface FixtureOptions {
  tls?: boolean;
  /**
   * Enforce the PKI directory's revoked.json, polled this often (tls only).
   * Off by default: open() re-issues an agent's certificate each time, which
   * revokes the one before.
   */
  revocationPollMs?: number;
  settings?: Partial<IngestSettings>;
  ratePerSecond?: number;
  /** Agent limits; the defaults otherwise (as deployed). */
  limits?: Partial<IngestLimits>;
  connections?: Partial<ConnectionLimits>;
  /** Where the server logs (silent by default). */
  logger?: Logger;
  /** The clock of the agent quotas' buckets (tests hold it still, or move it by hand). */
  quotaClock?: () => number;
  /** Staleness and render budget of the metrics; the defaults otherwise. */
  metrics?: Omit<MetricsOptions, "processMetrics">;
}

export interface IngestFixture {
  sql: Db;
  url: string;
  server: RunningIngestServer;
  metrics: AggregatorMetrics;
  /** PKI dir (tls only): ca.pem, server.pem, agents/<agent>.pem … */
  pkiDir: string | null;
  /** The revocation list in force (with revocationPollMs). */
  revocations: RevocationWatch | null;
  /** Opens a stream as `agent` of `site` (its certificate under tls). */
  open(agent: string, site: string, opts?: { creds?: ChannelCredentials }): Promise<TestStream>;
  /** A connection of its own as `agent` of `site`, to open streams on. */
  connect(agent: string, site: string): Promise<{ stream(): TestStream }>;
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
  await migrateUrl(new Secret(url));
  const metrics = new AggregatorMetrics({ ...opts.metrics, processMetrics: false });
  const tls = opts.tls === true;
  const settings: IngestSettings = { ...DEFAULT_TEST_SETTINGS, insecure: !tls, ...opts.settings };
  let pkiDir: string | null = null;
  let serverTls = null;
  let revocations: RevocationWatch | null = null;
  if (tls) {
    pkiDir = mkdtempSync(join(tmpdir(), "smbfleet-pki-"));
    await initCa(pkiDir);
    const files = await loadTlsFiles(await issueServer(pkiDir, { dns: ["localhost"], ip: ["127.0.0.1"] }));
    serverTls = { ca: files.ca, cert: files.cert, key: files.key };
    if (opts.revocationPollMs !== undefined) {
      // The PKI directory's own list, as an aggregator reading it directly would.
      revocations = await RevocationWatch.start(
        recordPaths(pkiDir).revoked,
        silentLogger(),
        opts.revocationPollMs,
      );
    }
  }
  const server = await startIngestServer({
    listen: { host: "127.0.0.1", port: 0 },
    tls: serverTls,
    revocations,
    maxMessageBytes: settings.maxMessageBytes,
    ...(opts.connections === undefined ? {} : { connections: opts.connections }),
    deps: {
      sql,
      batches: new BatchPool(batchSql, BATCH_CONNECTIONS),
      targets: new TargetCache(),
      metrics,
      observers: [metricsObserver(metrics)],
      logger: opts.logger ?? silentLogger(),
      limits: new AgentRateLimits(opts.ratePerSecond ?? 1_000_000),
      quotas: new AgentQuotas(
        { ...DEFAULT_INGEST_LIMITS, ...opts.limits },
        { onLogSuppressed: () => metrics.logLinesSuppressed.inc() },
        opts.quotaClock,
      ),
      settings,
      serverVersion: "test",
    },
  });
  const clients: Client[] = [];
  // One certificate per (site, agent), issued once: concurrent issues would overwrite each other's files.
  const issued = new Map<string, Promise<ChannelCredentials>>();
  const credsFor = (agent: string, site: string): Promise<ChannelCredentials> => {
    if (pkiDir === null) return Promise.resolve(credentials.createInsecure());
    const key = `${site}/${agent}`;
    let creds = issued.get(key);
    if (creds === undefined) {
      creds = issueAgent(pkiDir, { site, agent, force: true }).then(async (files) =>
        clientCredentials(await loadTlsFiles(files)),
      );
      issued.set(key, creds);
    }
    return creds;
  };
  return {
    sql,
    url,
    server,
    metrics,
    pkiDir,
    revocations,
    async open(agent, site, o = {}) {
      const client = new Client(`127.0.0.1:${server.port}`, o.creds ?? (await credsFor(agent, site)));
      clients.push(client);
      return new TestStream(client);
    },
    async connect(agent, site) {
      // A subchannel of its own: grpc-js would otherwise share one connection between clients.
      const client = new Client(`127.0.0.1:${server.port}`, await credsFor(agent, site), {
        "grpc.use_local_subchannel_pool": 1,
      });
      clients.push(client);
      return { stream: () => new TestStream(client) };
    },
    async close() {
      for (const c of clients) c.close();
      await server.close(2_000);
      await revocations?.stop();
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
