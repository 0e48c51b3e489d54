// The aggregator's mTLS listener. grpc-js terminates TLS itself and has no
// hook for a failed handshake: with a client certificate required, a client
// without one or with another CA's is cut during the handshake, sees a bare
// UNAVAILABLE, and the aggregator neither counts nor logs it. So the
// aggregator owns the listening socket and the handshake (node:tls) and hands
// each established connection to grpc-js through Server#createConnectionInjector
// (grpc-js >= 1.11, gRFC L114), with insecure credentials since the bytes it
// gets are already decrypted. grpc-js still sees the TLSSocket, so
// getAuthContext() reports the verified client certificate as before.
//
// The certificate is requested but a bad one does not abort the handshake
// (rejectUnauthorized: false): OpenSSL still verifies chain, dates and
// purpose against the fleet CA, and its verdict (verdict.ts) is kept per
// connection so that the stream opened on it is refused with the reason
// (admit.ts). getAuthContext() only ever shows a certificate that verified,
// so admission never depends on this bookkeeping. What cannot be told with a
// status (plain text, a failed handshake) is reported through onRefused.
// Pinned by test/pki/mtls.test.ts and test/ingest/security.test.ts.
import type { Server } from "@grpc/grpc-js";
import { ServerCredentials } from "@grpc/grpc-js";
import { createServer, type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import type { ListenAddress } from "../../../shared/config/types.ts";
import {
  certificateVerdict,
  handshakeFailure,
  type CertificateVerdict,
  type HandshakeFailure,
} from "./verdict.ts";

export interface TlsListenerOptions {
  /** The grpc-js server whose handlers serve the connections. */
  server: Server;
  listen: ListenAddress;
  /** PEM: the fleet CA (client certificates must chain to it), the aggregator's certificate and key. */
  tls: { ca: Buffer; cert: Buffer; key: Buffer };
  /** A connection refused before any stream could be opened on it. */
  onRefused(refusal: HandshakeFailure & { peer: string }): void;
}

export interface TlsListener {
  readonly port: number;
  /** The verdict on the certificate of the connection `peer` (a call's getPeer()) came on, while it is open. */
  verdictOf: (peer: string) => CertificateVerdict | undefined;
  /** Stops accepting connections. Open ones stay until grpc-js closes them (or destroyAll). */
  close(): void;
  /** Cuts every connection still open. */
  destroyAll(): void;
}

/**
 * A handshake that has not finished in this long is dropped (and counted):
 * a WAN handshake takes well under a second, and 1,000 agents reconnecting
 * at once after a restart cost about a second of CPU; grpc-js's own connect
 * timeout on the agent is 20 s.
 */
const HANDSHAKE_TIMEOUT_MS = 20_000;
/**
 * A connection whose certificate did not verify is kept this long: enough
 * for the client to open a stream and hear why it is refused, not enough for
 * an unauthenticated peer to hold resources.
 */
const UNVERIFIED_CONNECTION_MS = 10_000;

/** The key grpc-js's getPeer() gives a server call (server-interceptors.ts): "address:port". */
function peerKey(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  return socket.remotePort ? `${socket.remoteAddress}:${socket.remotePort}` : `${socket.remoteAddress}`;
}

export async function startTlsListener(opts: TlsListenerOptions): Promise<TlsListener> {
  const injector = opts.server.createConnectionInjector(ServerCredentials.createInsecure());
  const verdicts = new Map<string, CertificateVerdict>();
  const sockets = new Set<TLSSocket>();
  const listener = createServer({
    ca: opts.tls.ca,
    cert: opts.tls.cert,
    key: opts.tls.key,
    requestCert: true,
    rejectUnauthorized: false,
    // HTTP/2 only, as grpc-js's own secure server offers.
    ALPNProtocols: ["h2"],
    minVersion: "TLSv1.2",
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  });

  listener.on("tlsClientError", (err: Error & { code?: string }, socket: TLSSocket) => {
    const failure = handshakeFailure(err);
    if (failure !== null) opts.onRefused({ ...failure, peer: peerKey(socket) });
  });

  listener.on("secureConnection", (socket: TLSSocket) => {
    // Errors after the handshake (a reset link) end the HTTP/2 session; they are not ours to throw.
    socket.on("error", () => undefined);
    const key = peerKey(socket);
    if (socket.alpnProtocol !== "h2") {
      opts.onRefused({ reason: "tls_handshake", detail: "client did not offer HTTP/2 (ALPN h2)", peer: key });
      socket.destroy();
      return;
    }
    const verdict = certificateVerdict(socket);
    verdicts.set(key, verdict);
    sockets.add(socket);
    let timer: NodeJS.Timeout | undefined;
    if (!verdict.ok) timer = setTimeout(() => socket.destroy(), UNVERIFIED_CONNECTION_MS).unref();
    socket.once("close", () => {
      clearTimeout(timer);
      sockets.delete(socket);
      if (verdicts.get(key) === verdict) verdicts.delete(key);
    });
    injector.injectConnection(socket);
  });

  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(opts.listen.port, opts.listen.host, () => {
      listener.off("error", reject);
      resolve();
    });
  });

  return {
    port: (listener.address() as AddressInfo).port,
    verdictOf: (peer) => verdicts.get(peer),
    close: () => {
      listener.close();
    },
    destroyAll: () => {
      for (const socket of sockets) socket.destroy();
      injector.destroy();
    },
  };
}
