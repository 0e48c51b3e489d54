// The gRPC listener for smbfleet.v1.Ingest/Stream. mTLS is required unless
// the config says `insecure` (loopback demos); every stream is an AgentStream,
// admitted by its client certificate (admission/) before Hello is read. When
// the revocation list changes, the open streams of certificates it now lists
// are ended (test/ingest/security.test.ts).
import { Server, ServerCredentials, type ServerDuplexStream } from "@grpc/grpc-js";
import type { AggregatorMessage } from "../../../shared/gen/smbfleet/v1/ingest_pb.js";
import type { ListenAddress } from "../../../shared/config/types.ts";
import type { Decoded } from "../../../shared/grpc/service.ts";
import { AgentStream, type IngestDeps } from "./agent-stream.ts";
import { ingestServiceDefinition, type IngestMessage } from "../decode/raw-batch.ts";
import { statusError, statusName } from "./replies.ts";
import { status } from "@grpc/grpc-js";
import { LIMITS_DEFAULTS } from "../../../shared/config/defaults.ts";
import type { CertificateId } from "../../../shared/tls/revocation.ts";
import { admitCall, revokedDetails } from "../admission/admit.ts";
import type { RevocationSource } from "../admission/revocation-watch.ts";
import { startTlsListener, type TlsListener } from "../admission/tls-listener.ts";
import type { FleetIdentity } from "../../../shared/tls/identity.ts";

export interface IngestServerOptions {
  listen: ListenAddress;
  /** PEM of the fleet CA and the aggregator's certificate and key; null = plain text (insecure mode). */
  tls: { ca: Buffer; cert: Buffer; key: Buffer } | null;
  /** Certificates refused although the CA signed them ([tls] revoked); none when absent. */
  revocations?: RevocationSource | null;
  /** Messages above this are answered in-band with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** Connection limits grpc-js enforces ([limits]); defaults: LIMITS_DEFAULTS. */
  connections?: Partial<ConnectionLimits>;
  deps: IngestDeps;
}

/** What grpc-js 1.14's server enforces per connection (src/server.ts reads each of these options). */
export interface ConnectionLimits {
  /** grpc.max_concurrent_streams: HTTP/2 streams one connection may have open. */
  maxStreamsPerConnection: number;
  /** grpc.max_connection_idle_ms: a connection without streams is closed (GOAWAY) after this. */
  idleMs: number;
  /** grpc.max_connection_age_ms: a connection gets GOAWAY after this, ±10 % jitter. */
  maxAgeMs: number;
  /** grpc.max_connection_age_grace_ms: ...and is cut this long after the GOAWAY. */
  ageGraceMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxStreamsPerConnection: LIMITS_DEFAULTS.maxStreamsPerConnection,
  idleMs: LIMITS_DEFAULTS.connectionIdleSeconds * 1000,
  maxAgeMs: LIMITS_DEFAULTS.maxConnectionAgeSeconds * 1000,
  ageGraceMs: LIMITS_DEFAULTS.connectionAgeGraceSeconds * 1000,
};

export interface RunningIngestServer {
  readonly port: number;
  /** Open streams right now. */
  readonly streams: number;
  /**
   * Graceful stop: refuse new streams, let each stream finish the batch in
   * hand (commit + ack) and end it with UNAVAILABLE, then close the listener.
   * After graceMs whatever is left is cut.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * grpc-js's own receive limit sits above ours so that an oversized message
 * reaches the handler and is answered in-band (the stream survives); only a
 * message beyond twice our limit (and at least 1 MiB over it) ends the
 * stream with grpc-js's RESOURCE_EXHAUSTED.
 */
function transportLimit(maxMessageBytes: number): number {
  return maxMessageBytes + Math.max(maxMessageBytes, 1024 * 1024);
}

/** Ping idle agents every 30 s and drop them after 10 s of silence: a cut WAN link is noticed in under a minute. */
const KEEPALIVE = { "grpc.keepalive_time_ms": 30_000, "grpc.keepalive_timeout_ms": 10_000 };
/** setTimeout's longest delay; grpc-js treats it as "never". */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Streams are cut this long after close() began if they have not ended by themselves. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export async function startIngestServer(opts: IngestServerOptions): Promise<RunningIngestServer> {
  const c = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connections };
  const server = new Server({
    "grpc.max_receive_message_length": transportLimit(opts.maxMessageBytes),
    ...KEEPALIVE,
    "grpc.max_concurrent_streams": c.maxStreamsPerConnection,
    // grpc-js takes these as 32-bit timer values (its "unlimited" is 2^31 - 1 ms).
    "grpc.max_connection_idle_ms": Math.min(c.idleMs, MAX_TIMER_MS),
    "grpc.max_connection_age_ms": Math.min(c.maxAgeMs, MAX_TIMER_MS),
    "grpc.max_connection_age_grace_ms": Math.min(c.ageGraceMs, MAX_TIMER_MS),
  });
  const open = new Set<AgentStream>();
  /** The certificate of each open stream, to end it when the certificate is revoked. */
  const certificates = new Map<AgentStream, { identity: FleetIdentity; id: CertificateId }>();
  let draining = false;
  let listener: TlsListener | null = null;
  const { metrics, logger } = opts.deps;

  const handler = (call: ServerDuplexStream<Decoded<IngestMessage>, AggregatorMessage>): void => {
    if (draining) {
      call.emit("error", statusError(status.UNAVAILABLE, "aggregator shutting down; reconnect"));
      return;
    }
    const stream = new AgentStream(call, opts.deps);
    open.add(stream);
    void stream.done.then(() => {
      open.delete(stream);
      certificates.delete(stream);
    });
    if (listener === null) return stream.start();
    const admission = admitCall(call, {
      verdictOf: listener.verdictOf,
      ...(opts.revocations ? { revocations: opts.revocations.current() } : {}),
    });
    if (admission.ok) certificates.set(stream, { identity: admission.identity, id: admission.certificate });
    stream.start(admission);
  };
  server.addService(ingestServiceDefinition(opts.maxMessageBytes), { stream: handler });

  const stopWatching = opts.revocations?.onChange((list) => {
    for (const [stream, { identity, id }] of certificates) {
      const revoked = list.find(id);
      if (revoked === undefined) continue;
      stream.end(status.PERMISSION_DENIED, revokedDetails(identity, id, revoked.reason), "revoked");
    }
  });

  let port: number;
  if (opts.tls !== null) {
    listener = await startTlsListener({
      server,
      listen: opts.listen,
      tls: opts.tls,
      onRefused: ({ reason, detail, peer }) => {
        logger.warn({ peer, refusal: reason, reason: detail }, "connection refused");
        metrics.streamsRefused.inc({ code: statusName(status.UNAVAILABLE), reason });
      },
    });
    port = listener.port;
  } else {
    const address = `${opts.listen.host.includes(":") ? `[${opts.listen.host}]` : opts.listen.host}:${opts.listen.port}`;
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) =>
        err === null ? resolve(bound) : reject(err),
      );
    });
  }

  return {
    port,
    get streams() {
      return open.size;
    },
    async close(graceMs = DEFAULT_SHUTDOWN_GRACE_MS): Promise<void> {
      draining = true;
      stopWatching?.();
      listener?.close();
      const stopped = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<"late">(
        (resolve) => (timer = setTimeout(() => resolve("late"), graceMs)),
      );
      const drained = Promise.all([...open].map((s) => s.drain())).then(() => "drained" as const);
      // A batch stuck on a dead database must not hold shutdown: cut what is left.
      if ((await Promise.race([drained, graceOver])) === "late") {
        server.forceShutdown();
        listener?.destroyAll();
      }
      clearTimeout(timer);
      // Not destroyed after a graceful stop: a socket cut now could lose the status just written.
      await stopped;
    },
  };
}
