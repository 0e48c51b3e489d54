import { X509Certificate, createPrivateKey } from "node:crypto";
import { copyFile, mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isSmbfleetError } from "../errors.ts";
import { OID, readAltNames } from "./certificate.ts";
import { PKI_DEFAULTS, initCa, issueAgent, issueServer, pkiPaths } from "./pki.ts";

let root: string;
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "smbfleet-pki-"));
  dir = join(root, "pki");
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const load = async (path: string) => new X509Certificate(await readFile(path));
const DAY = 86_400_000;

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}

describe("initCa", () => {
  it("creates a self-signed P-256 CA, key 0600, directory 0700, valid ten years", async () => {
    const now = new Date("2030-01-01T00:00:00Z");
    const files = await initCa(dir, { now });
    expect(files).toEqual({
      cert: join(dir, "ca.pem"),
      key: join(dir, "ca-key.pem"),
      notAfter: new Date(now.getTime() + PKI_DEFAULTS.caDays * DAY),
    });
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(files.key)).toBe(0o600);
    expect(await mode(files.cert)).toBe(0o644);
    const ca = await load(files.cert);
    expect(ca.ca).toBe(true);
    expect(ca.checkIssued(ca)).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(ca.checkPrivateKey(createPrivateKey(await readFile(files.key)))).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: "prime256v1" });
    expect(ca.subject).toMatch(/^O=smbfleet\nCN=smbfleet fleet CA [0-9a-f]{8}$/);
    expect(ca.validToDate.getTime() - now.getTime()).toBe(PKI_DEFAULTS.caDays * DAY);
    expect(now.getTime() - ca.validFromDate.getTime()).toBe(PKI_DEFAULTS.backdateMs);
    expect((await readdir(dir)).sort()).toEqual(["ca-key.pem", "ca.pem"]);
  });

  it("refuses to overwrite an existing CA unless forced, and leaves it intact", async () => {
    const first = await initCa(dir);
    const before = await readFile(first.key);
    const err = await rejection(initCa(dir));
    expect(isSmbfleetError(err, "PKI_EXISTS")).toBe(true);
    expect(err.message).toBe(`${join(dir, "ca-key.pem")} already exists; use --force to replace it`);
    expect(await readFile(first.key)).toEqual(before);
    expect((await readdir(dir)).sort()).toEqual(["ca-key.pem", "ca.pem"]);
    await initCa(dir, { force: true });
    expect(await readFile(first.key)).not.toEqual(before);
    expect(await mode(first.key)).toBe(0o600);
  });

  it("refuses a validity that is not a whole number of days in range", async () => {
    for (const days of [0, -1, 1.5, 36_501]) {
      const err = await rejection(initCa(dir, { days }));
      expect(err.message).toBe(`validity of ${days} days: must be a whole number from 1 to 36500`);
    }
  });
});

describe("issueServer", () => {
  it("issues a serverAuth certificate with every DNS name and IP as a SAN", async () => {
    await initCa(dir);
    const files = await issueServer(dir, { dns: ["localhost", "hq.example.com"], ip: ["127.0.0.1", "::1"] });
    expect(files).toMatchObject({
      ca: join(dir, "ca.pem"),
      cert: join(dir, "server.pem"),
      key: join(dir, "server-key.pem"),
    });
    expect(await mode(files.key)).toBe(0o600);
    const ca = await load(files.ca);
    const cert = await load(files.cert);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(files.key)))).toBe(true);
    expect(cert.keyUsage).toEqual([OID.serverAuth]);
    expect(cert.subjectAltName).toBe(
      "DNS:localhost, DNS:hq.example.com, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
    );
    expect(readAltNames(cert.raw)).toEqual({
      dns: ["localhost", "hq.example.com"],
      ip: ["127.0.0.1", "0:0:0:0:0:0:0:1"],
      uri: [],
    });
    expect(cert.checkHost("hq.example.com")).toBe("hq.example.com");
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.subject).toBe("O=smbfleet\nCN=localhost");
  });

  it("refuses without names or with a bad one, writing nothing", async () => {
    await initCa(dir);
    expect((await rejection(issueServer(dir, {}))).message).toBe(
      "a server certificate needs at least one DNS name or IP address",
    );
    expect((await rejection(issueServer(dir, { dns: ["a_b"], ip: ["1.2.3"] }))).message).toBe(
      `DNS name "a_b" is invalid: labels of letters, digits and '-', separated by '.'; IP address "1.2.3" is invalid`,
    );
    expect((await readdir(dir)).sort()).toEqual(["ca-key.pem", "ca.pem"]);
  });
});

describe("issueAgent", () => {
  it("names the agent and its site in the subject and the authoritative URI SAN", async () => {
    await initCa(dir);
    const files = await issueAgent(dir, { site: "paris", agent: "paris-01" });
    expect(files).toMatchObject({
      ca: join(dir, "ca.pem"),
      cert: join(dir, "agents", "paris-01.pem"),
      key: join(dir, "agents", "paris-01-key.pem"),
      limitedByCa: false,
    });
    expect(await mode(join(dir, "agents"))).toBe(0o700);
    expect(await mode(files.key)).toBe(0o600);
    const ca = await load(files.ca);
    const cert = await load(files.cert);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subject).toBe("O=smbfleet\nOU=paris\nCN=paris-01");
    expect(cert.subjectAltName).toBe("URI:urn:smbfleet:site:paris:agent:paris-01");
    expect(cert.keyUsage).toEqual([OID.clientAuth]);
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(files.key)))).toBe(true);
    expect(cert.serialNumber).not.toBe(
      (await load((await issueAgent(dir, { site: "paris", agent: "b" })).cert)).serialNumber,
    );
  });

  it("honours --days and never outlives the CA", async () => {
    const now = new Date("2030-01-01T00:00:00Z");
    await initCa(dir, { days: 100, now });
    const short = await issueAgent(dir, { site: "s", agent: "a", days: 10, now });
    expect((await load(short.cert)).validToDate.getTime() - now.getTime()).toBe(10 * DAY);
    const long = await issueAgent(dir, { site: "s", agent: "b", now });
    expect(long.limitedByCa).toBe(true);
    expect((await load(long.cert)).validTo).toBe((await load(long.ca)).validTo);
  });

  it("refuses invalid names with the rule, and writes nothing", async () => {
    await initCa(dir);
    const err = await rejection(issueAgent(dir, { site: "Paris", agent: "a/b" }));
    expect(isSmbfleetError(err, "PKI_FAILED")).toBe(true);
    expect(err.message).toContain(`site name "Paris" is invalid`);
    expect(err.message).toContain(`agent name "a/b" is invalid`);
    expect((await readdir(dir)).sort()).toEqual(["ca-key.pem", "ca.pem"]);
  });

  it("refuses to replace an agent's key unless forced", async () => {
    await initCa(dir);
    const files = await issueAgent(dir, { site: "s", agent: "a" });
    const before = await readFile(files.cert);
    expect((await rejection(issueAgent(dir, { site: "s", agent: "a" }))).code).toBe("PKI_EXISTS");
    expect(await readFile(files.cert)).toEqual(before);
    await issueAgent(dir, { site: "s2", agent: "a", force: true });
    expect((await load(files.cert)).subjectAltName).toBe("URI:urn:smbfleet:site:s2:agent:a");
    expect((await readdir(join(dir, "agents"))).sort()).toEqual(["a-key.pem", "a.pem"]);
  });

  it("says to run init when there is no CA, creating nothing", async () => {
    const err = await rejection(issueAgent(dir, { site: "s", agent: "a" }));
    expect(err.message).toMatch(
      new RegExp(`^no usable fleet CA in ${dir}: .*ENOENT.*; run 'smbfleet pki init --dir ${dir}' first$`),
    );
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
  });

  it("refuses a CA key that does not belong to the CA certificate", async () => {
    await initCa(dir);
    const other = join(root, "other");
    await initCa(other);
    await copyFile(pkiPaths(other).caKey, pkiPaths(dir).caKey);
    expect((await rejection(issueAgent(dir, { site: "s", agent: "a" }))).message).toBe(
      `${join(dir, "ca-key.pem")} is not the private key of ${join(dir, "ca.pem")}`,
    );
  });
});
