// What the TLS handshake says about a client, in the aggregator's refusal
// reasons (refusals.ts). The listener (tls-listener.ts) asks for a client
// certificate without letting OpenSSL abort the handshake over it, so that a
// client with a missing, foreign or expired certificate is told why with a
// gRPC status and counted, instead of seeing a bare UNAVAILABLE. OpenSSL
// still verifies the chain against the fleet CA, the validity dates and the
// purpose (clientAuth) exactly as before; this reads its result.
import type { PeerCertificate } from "node:tls";
import type { RefusalReason } from "../refusals.ts";

export type CertificateVerdict =
  | { ok: true }
  | {
      ok: false;
      reason: Extract<
        RefusalReason,
        "no_client_certificate" | "untrusted_certificate" | "expired_certificate" | "bad_identity"
      >;
      detail: string;
    };

/** OpenSSL verify results (X509_V_ERR_* names, as Node reports them) that are about dates. */
const DATE_ERRORS = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);

/** The verdict on a socket that completed its handshake with requestCert and rejectUnauthorized = false. */
export function certificateVerdict(socket: {
  authorized: boolean;
  /** An OpenSSL verify error name, e.g. CERT_HAS_EXPIRED (typed Error by @types/node, a string at run time). */
  authorizationError?: Error | string | null;
  getPeerCertificate(): Partial<PeerCertificate>;
}): CertificateVerdict {
  if (socket.authorized) return { ok: true };
  const peer = socket.getPeerCertificate();
  const error = String(socket.authorizationError ?? "UNSPECIFIED");
  if (Object.keys(peer).length === 0) {
    return { ok: false, reason: "no_client_certificate", detail: "no client certificate" };
  }
  if (DATE_ERRORS.has(error)) {
    const when =
      error === "CERT_HAS_EXPIRED" ? `expired on ${peer.valid_to}` : `not valid until ${peer.valid_from}`;
    return { ok: false, reason: "expired_certificate", detail: `client certificate ${when} (${error})` };
  }
  if (error === "INVALID_PURPOSE") {
    // A fleet server certificate offered as a client one.
    return {
      ok: false,
      reason: "bad_identity",
      detail: "client certificate is not for client authentication (INVALID_PURPOSE)",
    };
  }
  return {
    ok: false,
    reason: "untrusted_certificate",
    detail: `client certificate not issued by the fleet CA (${error})`,
  };
}

/** OpenSSL's words for a first record that is not TLS at all. */
const NOT_TLS = new Set([
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "ERR_SSL_HTTP_REQUEST",
  "ERR_SSL_HTTPS_PROXY_REQUEST",
  "ERR_SSL_PACKET_LENGTH_TOO_LONG",
  "ERR_SSL_RECORD_LENGTH_MISMATCH",
]);

export type HandshakeFailure = {
  reason: Extract<RefusalReason, "not_tls" | "tls_handshake">;
  detail: string;
};

/**
 * A failed handshake (the listener's tlsClientError) as a refusal, or null
 * when the client hung up: a port check or a load balancer's TCP probe, or a
 * client that did not trust the aggregator's certificate. Those are not the
 * aggregator refusing anyone (the client logs why it left).
 */
export function handshakeFailure(err: Error & { code?: string }): HandshakeFailure | null {
  const code = err.code ?? "";
  if (NOT_TLS.has(code)) return { reason: "not_tls", detail: `not TLS (${code})` };
  if (code === "ECONNRESET" || code === "EPIPE") return null;
  return { reason: "tls_handshake", detail: `TLS handshake failed: ${code === "" ? err.message : code}` };
}
