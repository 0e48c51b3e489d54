// Who may open a stream: decided once, when the stream starts and before
// Hello is read. A certificate that verified against the fleet CA (the only
// kind grpc-js's getAuthContext() shows), that names an agent, and that is
// not on the revocation list. Anything else is refused with the reason
// (refusals.ts) and nothing is written.
import { status } from "@grpc/grpc-js";
import { checkPeerIdentity, type FleetIdentity, type HasAuthContext } from "../../../shared/tls/identity.ts";
import { certificateId, type CertificateId, type RevocationList } from "../../../shared/tls/revocation.ts";
import type { StatusCode } from "../stream/replies.ts";
import type { RefusalReason } from "../refusals.ts";
import type { CertificateVerdict } from "./verdict.ts";

export type Admission =
  | { ok: true; identity: FleetIdentity; certificate: CertificateId }
  | { ok: false; code: StatusCode; reason: RefusalReason; details: string };

export interface AdmissionContext {
  /** The listener's verdict on the call's connection (tls-listener.ts), to say why a certificate is missing. */
  verdictOf?: (peer: string) => CertificateVerdict | undefined;
  revocations?: RevocationList;
}

type Call = HasAuthContext & { getPeer(): string };

/** The identity of a revoked certificate's refusal, in words an operator can grep. */
export function revokedDetails(identity: FleetIdentity, id: CertificateId, reason: string): string {
  return `certificate serial ${id.serial} of agent ${identity.agent} (site ${identity.site}) is revoked (${reason})`;
}

export function admitCall(call: Call, ctx: AdmissionContext = {}): Admission {
  const cert = call.getAuthContext().sslPeerCertificate;
  if (cert?.raw === undefined) {
    const verdict = ctx.verdictOf?.(call.getPeer());
    if (verdict !== undefined && !verdict.ok) {
      return { ok: false, code: status.UNAUTHENTICATED, reason: verdict.reason, details: verdict.detail };
    }
    return {
      ok: false,
      code: status.UNAUTHENTICATED,
      reason: "untrusted_certificate",
      details: "no verified client certificate",
    };
  }
  const check = checkPeerIdentity(call);
  if (!check.ok)
    return { ok: false, code: status.UNAUTHENTICATED, reason: "bad_identity", details: check.reason };
  const id = certificateId(cert.raw);
  const revoked = ctx.revocations?.find(id);
  if (revoked !== undefined) {
    return {
      ok: false,
      code: status.PERMISSION_DENIED,
      reason: "revoked",
      details: revokedDetails(check.identity, id, revoked.reason),
    };
  }
  return { ok: true, identity: check.identity, certificate: id };
}
