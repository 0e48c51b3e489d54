// Why the aggregator refused a connection or ended a stream: the `reason`
// label of smbfleet_ingest_streams_refused_total, a small fixed set so that
// an operator can alert on each (an expired certificate is a site visit to
// plan; a revoked one reconnecting is someone to call). Each reason has the
// one gRPC status the agent sees with it.
import { status } from "@grpc/grpc-js";

export const REFUSALS = {
  /** Plain text (or anything not TLS) on the TLS port: no gRPC status reaches the client. */
  not_tls: status.UNAVAILABLE,
  /** The TLS handshake failed: most often the client does not trust the aggregator's certificate. */
  tls_handshake: status.UNAVAILABLE,
  no_client_certificate: status.UNAUTHENTICATED,
  /** Not issued by the fleet CA (chain or signature does not verify). */
  untrusted_certificate: status.UNAUTHENTICATED,
  /** Past its notAfter, or before its notBefore. */
  expired_certificate: status.UNAUTHENTICATED,
  /** A fleet certificate that names no agent: no or a malformed identity URI, or not for client authentication. */
  bad_identity: status.UNAUTHENTICATED,
  /** On the revocation list ([tls] revoked). */
  revoked: status.PERMISSION_DENIED,
  /** [agents] disabled, or disabled in the database. */
  disabled: status.PERMISSION_DENIED,
  /** Hello claims another site than the certificate, or the agent id is registered to another site. */
  site_mismatch: status.PERMISSION_DENIED,
  /** Hello claims another agent id than the certificate. */
  agent_mismatch: status.PERMISSION_DENIED,
  /** The first message was not Hello. */
  no_hello: status.FAILED_PRECONDITION,
  /** Hello does not decode, or (insecure mode) names no valid site or agent. */
  bad_hello: status.INVALID_ARGUMENT,
  /** No Hello within [limits] hello_timeout. */
  hello_timeout: status.DEADLINE_EXCEEDED,
  /** More concurrent streams than [limits] max_streams_per_agent. */
  stream_quota: status.RESOURCE_EXHAUSTED,
  /** Hellos or Heartbeats over their [limits] rate. */
  rate_limited: status.RESOURCE_EXHAUSTED,
  database_unavailable: status.UNAVAILABLE,
  shutdown: status.UNAVAILABLE,
  internal: status.INTERNAL,
} as const;

export type RefusalReason = keyof typeof REFUSALS | "other";

export const REFUSAL_REASONS = Object.keys(REFUSALS) as (keyof typeof REFUSALS)[];
