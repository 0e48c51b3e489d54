import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTlsFiles, type TlsPaths } from "./files.ts";
import { initCa, issueAgent, pkiPaths } from "./pki.ts";

let root: string;
let good: TlsPaths;
let otherCa: TlsPaths;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "smbfleet-tlsfiles-"));
  await initCa(join(root, "a"));
  good = await issueAgent(join(root, "a"), { site: "s", agent: "a1" });
  await initCa(join(root, "b"));
  otherCa = await issueAgent(join(root, "b"), { site: "s", agent: "a1" });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function problem(paths: TlsPaths, now?: Date): Promise<string> {
  try {
    await loadTlsFiles(paths, now);
  } catch (err) {
    expect((err as { code?: string }).code).toBe("TLS_INVALID");
    return (err as Error).message;
  }
  throw new Error("expected loadTlsFiles to fail");
}

describe("loadTlsFiles", () => {
  it("loads a matching CA, certificate and key", async () => {
    const files = await loadTlsFiles(good);
    expect(files.ca.toString()).toContain("BEGIN CERTIFICATE");
    expect(files.key.toString()).toContain("BEGIN PRIVATE KEY");
    expect(files.certificate.subjectAltName).toBe("URI:urn:smbfleet:site:s:agent:a1");
    expect(files.notAfter).toEqual(files.certificate.validToDate);
    expect(files.warnings).toEqual([]);
  });

  it("accepts a CA bundle holding the old and the new CA (rotation)", async () => {
    const bundle = join(root, "bundle.pem");
    await writeFile(bundle, Buffer.concat([await readFile(otherCa.ca), await readFile(good.ca)]));
    expect((await loadTlsFiles({ ...good, ca: bundle })).certificate.subject).toContain("CN=a1");
  });

  it("names a missing file", async () => {
    const missing = join(root, "nope.pem");
    expect(await problem({ ...good, cert: missing })).toBe(`cert file ${missing} does not exist`);
  });

  it("names a directory given as a file", async () => {
    expect(await problem({ ...good, key: root })).toBe(`key file ${root} is a directory, not a file`);
  });

  it("names a file that is not a certificate", async () => {
    const junk = join(root, "junk.pem");
    await writeFile(junk, "hello\n");
    expect(await problem({ ...good, ca: junk })).toBe(
      `ca file ${junk} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
    const broken = join(root, "broken.pem");
    await writeFile(broken, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    expect(await problem({ ...good, cert: broken })).toMatch(
      new RegExp(`^cert file ${broken} is not a valid certificate: `),
    );
  });

  it("names a key that is not a key, or not this certificate's", async () => {
    expect(await problem({ ...good, key: good.cert })).toMatch(
      new RegExp(`^key file ${good.cert} is not an unencrypted PEM private key: `),
    );
    expect(await problem({ ...good, key: otherCa.key })).toBe(
      `key file ${otherCa.key} is not the private key of ${good.cert}`,
    );
  });

  it("refuses a certificate from another CA, and a leaf given as the CA", async () => {
    expect(await problem({ ...good, ca: otherCa.ca })).toBe(
      `cert file ${good.cert} was not issued by the CA in ${otherCa.ca}`,
    );
    expect(await problem({ ...good, ca: good.cert })).toBe(
      `ca file ${good.cert} holds O=smbfleet, OU=s, CN=a1, which is not a CA`,
    );
  });

  it("refuses expired and not-yet-valid certificates", async () => {
    const late = new Date(Date.now() + 3 * 365 * 86_400_000);
    expect(await problem(good, late)).toMatch(new RegExp(`^cert file ${good.cert} expired on \\d{4}-`));
    const early = new Date(Date.now() - 3_600_000);
    expect(await problem(good, early)).toMatch(
      /^ca file .* is not valid until .* \(is this machine's clock right\?\)$/,
    );
  });

  it("warns when the key is open to others", async () => {
    const dir = join(root, "a");
    const paths = pkiPaths(dir);
    await chmod(paths.agentKey("a1"), 0o640);
    try {
      expect((await loadTlsFiles(good)).warnings).toEqual([
        `key file ${paths.agentKey("a1")} is open to group or others (mode 0640); chmod 600 it`,
      ]);
    } finally {
      await chmod(paths.agentKey("a1"), 0o600);
    }
  });
});
