// Who is on the other end of an ingest stream: the site and agent named by
// the client certificate's URI SAN (shared/tls/names.ts). grpc-js exposes the
// verified client certificate to a handler as
//   call.getAuthContext().sslPeerCertificate   (a tls.PeerCertificate)
// and only when the TLS socket is `authorized`, i.e. the chain verified
// against the CA given to ServerCredentials.createSsl (grpc-js 1.14
// server-interceptors.ts getAuthContext). Pinned by test/pki/mtls.test.ts.
import { X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import { errorMessage } from "../errors.ts";
import { OID, readAltNames } from "./certificate.ts";
import { isFleetUri, parseIdentityUri, type FleetIdentity } from "./names.ts";

export type { FleetIdentity } from "./names.ts";

export type IdentityCheck = { ok: true; identity: FleetIdentity } | { ok: false; reason: string };

/**
 * Anything that carries a grpc-js auth context: every server call object does.
 * (grpc-js does not export its AuthContext type, so this names the one field used.)
 */
export interface HasAuthContext {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate | undefined };
}

/**
 * The identity in a certificate, or why there is none. The certificate must
 * already be verified against the fleet CA (grpc-js does so before it exposes
 * one); this reads names, it does not check signatures.
 */
export function checkPeerCertificate(
  cert: PeerCertificate | X509Certificate | null | undefined,
): IdentityCheck {
  const raw = cert?.raw;
  if (raw === undefined || raw.length === 0) return { ok: false, reason: "no verified client certificate" };
  let uris: string[];
  let usages: string[] | undefined;
  try {
    uris = readAltNames(raw).uri;
    usages = (cert instanceof X509Certificate ? cert : new X509Certificate(raw)).keyUsage;
  } catch (err) {
    return { ok: false, reason: `client certificate cannot be parsed: ${errorMessage(err)}` };
  }
  // Without an EKU extension a certificate is good for any purpose (RFC 5280 §4.2.1.12);
  // with one, it must allow client authentication, so a server certificate cannot pose as an agent.
  if (usages !== undefined && usages.length > 0 && !usages.includes(OID.clientAuth)) {
    return { ok: false, reason: "client certificate is not for client authentication (extended key usage)" };
  }
  const fleetUris = uris.filter(isFleetUri);
  if (fleetUris.length === 0) return { ok: false, reason: "client certificate has no urn:smbfleet: URI SAN" };
  if (fleetUris.length > 1) {
    return {
      ok: false,
      reason: `client certificate has ${fleetUris.length} urn:smbfleet: URIs; exactly one is allowed`,
    };
  }
  const uri = fleetUris[0] as string;
  const identity = parseIdentityUri(uri);
  if (identity === null)
    return { ok: false, reason: `client certificate has a malformed identity URI ${JSON.stringify(uri)}` };
  return { ok: true, identity };
}

export function identityFromPeerCertificate(
  cert: PeerCertificate | X509Certificate | null | undefined,
): FleetIdentity | null {
  const check = checkPeerCertificate(cert);
  return check.ok ? check.identity : null;
}

/** The identity of a call's client, or why it has none (for the refusal log line). */
export function checkPeerIdentity(call: HasAuthContext): IdentityCheck {
  return checkPeerCertificate(call.getAuthContext().sslPeerCertificate);
}
