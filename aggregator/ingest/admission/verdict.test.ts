import type { PeerCertificate } from "node:tls";
import { describe, expect, it } from "vitest";
import { certificateVerdict, handshakeFailure } from "./verdict.ts";

const peer = {
  valid_from: "Jan  1 00:00:00 2026 GMT",
  valid_to: "Jan  1 00:00:00 2027 GMT",
} as PeerCertificate;
const socket = (authorized: boolean, authorizationError: string | null, cert: object = peer) => ({
  authorized,
  authorizationError,
  getPeerCertificate: () => cert,
});

describe("certificateVerdict", () => {
  it.each([
    [socket(true, null), { ok: true }],
    [socket(false, "UNABLE_TO_GET_ISSUER_CERT", {}), { ok: false, reason: "no_client_certificate" }],
    [socket(false, "UNABLE_TO_VERIFY_LEAF_SIGNATURE"), { ok: false, reason: "untrusted_certificate" }],
    [socket(false, "SELF_SIGNED_CERT_IN_CHAIN"), { ok: false, reason: "untrusted_certificate" }],
    [
      socket(false, "CERT_HAS_EXPIRED"),
      {
        ok: false,
        reason: "expired_certificate",
        detail: "client certificate expired on Jan  1 00:00:00 2027 GMT (CERT_HAS_EXPIRED)",
      },
    ],
    [
      socket(false, "CERT_NOT_YET_VALID"),
      {
        ok: false,
        reason: "expired_certificate",
        detail: "client certificate not valid until Jan  1 00:00:00 2026 GMT (CERT_NOT_YET_VALID)",
      },
    ],
    [socket(false, "INVALID_PURPOSE"), { ok: false, reason: "bad_identity" }],
  ])("%#: classifies OpenSSL's verdict", (s, expected) => {
    expect(certificateVerdict(s)).toMatchObject(expected);
  });
});

describe("handshakeFailure", () => {
  const err = (code: string) => Object.assign(new Error(code), { code });
  it("tells plain text from other failures, and does not count a client that hung up", () => {
    expect(handshakeFailure(err("ERR_SSL_WRONG_VERSION_NUMBER"))).toEqual({
      reason: "not_tls",
      detail: "not TLS (ERR_SSL_WRONG_VERSION_NUMBER)",
    });
    expect(handshakeFailure(err("ERR_SSL_HTTP_REQUEST"))?.reason).toBe("not_tls");
    expect(handshakeFailure(err("ERR_TLS_HANDSHAKE_TIMEOUT"))).toEqual({
      reason: "tls_handshake",
      detail: "TLS handshake failed: ERR_TLS_HANDSHAKE_TIMEOUT",
    });
    expect(handshakeFailure(err("ECONNRESET"))).toBeNull();
  });
});
