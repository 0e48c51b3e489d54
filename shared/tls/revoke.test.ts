import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { initCa, issueAgent } from "./pki.ts";
import { readIssued, recordPaths } from "./records.ts";
import { certificateId, readRevocationList } from "./revocation.ts";
import { revokeCertificates } from "./revoke.ts";

let root: string;
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "smbfleet-revoke-"));
  dir = join(root, "pki");
  await initCa(dir);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const revoked = async () => (await readRevocationList(recordPaths(dir).revoked)).list;

describe("issueAgent records what it issues", () => {
  it("appends each certificate to issued.jsonl, and --force revokes the one it replaces", async () => {
    const first = await issueAgent(dir, { site: "paris", agent: "paris-01" });
    expect(certificateId(new X509Certificate(await readFile(first.cert)))).toEqual({
      serial: first.serial,
      sha256: first.sha256,
    });
    expect(first.superseded).toBeNull();
    await expect(stat(recordPaths(dir).revoked)).rejects.toThrow(/ENOENT/);

    const second = await issueAgent(dir, { site: "paris", agent: "paris-01", force: true });
    expect(second.superseded).toMatchObject({
      serial: first.serial,
      sha256: first.sha256,
      site: "paris",
      agent: "paris-01",
      reason: "superseded",
    });
    expect((await readIssued(dir)).map((r) => [r.agent, r.serial])).toEqual([
      ["paris-01", first.serial],
      ["paris-01", second.serial],
    ]);
    const list = await revoked();
    expect(list.find(first)).toMatchObject({ reason: "superseded" });
    expect(list.find(second)).toBeUndefined();
  });

  it("keeps every record when many are issued at once", async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        issueAgent(dir, { site: "s", agent: "a", force: true }).then(() => i),
      ),
    );
    expect(await readIssued(dir)).toHaveLength(20);
    // Each but the last was superseded by another.
    expect((await revoked()).size).toBe(19);
  });
});

describe("revokeCertificates", () => {
  it("revokes an agent's current certificate, then all of them, never twice", async () => {
    const old = await issueAgent(dir, { site: "paris", agent: "paris-01" });
    const current = await issueAgent(dir, { site: "paris", agent: "paris-01", force: true });
    const one = await revokeCertificates(dir, { agent: "paris-01" });
    expect(one.revocations).toHaveLength(1);
    expect(one.revocations[0]).toMatchObject({
      already: false,
      certificate: { serial: current.serial, reason: "revoked" },
    });
    expect(one.listed).toBe(2);
    const all = await revokeCertificates(dir, { agent: "paris-01", all: true });
    expect(all.revocations.map((r) => [r.certificate.serial, r.already])).toEqual([
      [old.serial, true],
      [current.serial, true],
    ]);
  });

  it("revokes by serial or fingerprint, listing unknown ones as given", async () => {
    const a = await issueAgent(dir, { site: "s", agent: "a" });
    const b = await issueAgent(dir, { site: "s", agent: "b" });
    const bySerial = await revokeCertificates(dir, { serial: a.serial.toUpperCase() });
    expect(bySerial).toMatchObject({ unindexed: false, listed: 1 });
    expect(bySerial.revocations[0]?.certificate).toMatchObject({ sha256: a.sha256, agent: "a" });
    const colons = b.sha256.match(/../g)!.join(":");
    expect((await revokeCertificates(dir, { sha256: colons })).revocations[0]?.certificate).toMatchObject({
      serial: b.serial,
    });
    const unknown = await revokeCertificates(dir, { serial: "0123" });
    expect(unknown).toMatchObject({ unindexed: true, listed: 3 });
    expect(unknown.revocations[0]?.certificate).toMatchObject({ serial: "123", sha256: null });
    expect((await revoked()).find({ serial: "123", sha256: "00".repeat(32) })).toBeDefined();
  });

  it("says what is missing", async () => {
    await expect(revokeCertificates(dir, { agent: "ghost" })).rejects.toThrow(
      `${join(dir, "agents", "ghost.pem")} does not exist, so agent ghost has no current certificate`,
    );
    await expect(revokeCertificates(dir, { agent: "ghost", all: true })).rejects.toThrow(
      /^no certificate of agent ghost in .*issued\.jsonl or .*ghost\.pem: nothing to revoke$/,
    );
    await expect(revokeCertificates(join(root, "nope"), { serial: "1" })).rejects.toThrow(
      `no PKI directory ${join(root, "nope")}`,
    );
  });
});
