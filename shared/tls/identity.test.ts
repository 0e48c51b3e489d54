import { X509Certificate, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createCertificate, type CertificateRole } from "./certificate.ts";
import { checkPeerCertificate, checkPeerIdentity, identityFromPeerCertificate } from "./identity.ts";

// Certificates built in memory with the same encoder the PKI uses; whether
// TLS accepts them is test/pki/mtls.test.ts's business, this is about names.
const ca = generateKeyPairSync("ec", { namedCurve: "P-256" });

function certificate(role: CertificateRole): X509Certificate {
  const leaf = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const now = Date.now();
  return new X509Certificate(
    createCertificate({
      role,
      subject: { organization: "smbfleet", organizationalUnit: "paris", commonName: "paris-01" },
      subjectPublicKey: leaf.publicKey,
      issuerPublicKey: ca.publicKey,
      signingKey: ca.privateKey,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3_600_000),
    }),
  );
}

const agentWith = (uri: string[]) => certificate({ kind: "agent", altNames: { uri } });

describe("identity from a peer certificate", () => {
  it("reads site and agent from the URI SAN, from an X509Certificate or a tls.PeerCertificate", () => {
    const cert = agentWith(["urn:smbfleet:site:paris:agent:paris-01"]);
    expect(identityFromPeerCertificate(cert)).toEqual({ site: "paris", agent: "paris-01" });
    expect(identityFromPeerCertificate({ raw: cert.raw } as never)).toEqual({
      site: "paris",
      agent: "paris-01",
    });
  });

  it("takes the URI, not the subject, as the identity", () => {
    // Subject says OU=paris, CN=paris-01; the URI says berlin/b1, and wins.
    expect(identityFromPeerCertificate(agentWith(["urn:smbfleet:site:berlin:agent:b1"]))).toEqual({
      site: "berlin",
      agent: "b1",
    });
  });

  it.each([
    [undefined, "no verified client certificate"],
    [null, "no verified client certificate"],
    [{ raw: Buffer.alloc(0) }, "no verified client certificate"],
  ])("refuses %j: %s", (cert, reason) => {
    expect(checkPeerCertificate(cert as never)).toEqual({ ok: false, reason });
  });

  it("refuses a certificate without a fleet URI, even with other names", () => {
    expect(checkPeerCertificate(agentWith([]))).toEqual({
      ok: false,
      reason: "client certificate has no urn:smbfleet: URI SAN",
    });
    expect(
      checkPeerCertificate(
        certificate({ kind: "agent", altNames: { dns: ["paris-01"], uri: ["https://x/"] } }),
      ),
    ).toEqual({
      ok: false,
      reason: "client certificate has no urn:smbfleet: URI SAN",
    });
  });

  it("is not fooled by a URI that would read as two in Node's display string", () => {
    const sneaky = agentWith(["urn:x, URI:urn:smbfleet:site:hq:agent:root"]);
    expect(sneaky.subjectAltName).toContain("urn:smbfleet:site:hq:agent:root");
    expect(checkPeerCertificate(sneaky)).toEqual({
      ok: false,
      reason: "client certificate has no urn:smbfleet: URI SAN",
    });
  });

  it("refuses two fleet URIs, and a malformed one", () => {
    expect(
      checkPeerCertificate(agentWith(["urn:smbfleet:site:a:agent:x", "urn:smbfleet:site:b:agent:x"])),
    ).toEqual({ ok: false, reason: "client certificate has 2 urn:smbfleet: URIs; exactly one is allowed" });
    expect(checkPeerCertificate(agentWith(["urn:smbfleet:site:Paris:agent:x"]))).toEqual({
      ok: false,
      reason: `client certificate has a malformed identity URI "urn:smbfleet:site:Paris:agent:x"`,
    });
  });

  it("refuses a server certificate even if it carries a fleet URI", () => {
    const server = certificate({
      kind: "server",
      altNames: { uri: ["urn:smbfleet:site:paris:agent:paris-01"] },
    });
    expect(checkPeerCertificate(server)).toEqual({
      ok: false,
      reason: "client certificate is not for client authentication (extended key usage)",
    });
  });

  it("checkPeerIdentity reads the certificate grpc-js puts in a call's auth context", () => {
    const cert = agentWith(["urn:smbfleet:site:paris:agent:paris-01"]);
    expect(
      checkPeerIdentity({ getAuthContext: () => ({ sslPeerCertificate: { raw: cert.raw } as never }) }),
    ).toEqual({ ok: true, identity: { site: "paris", agent: "paris-01" } });
    expect(checkPeerIdentity({ getAuthContext: () => ({}) }).ok).toBe(false);
  });
});
