import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  RevocationList,
  formatRevocationList,
  normalizeSerial,
  normalizeSha256,
  parseRevocationList,
  readRevocationList,
  type RevokedCertificate,
} from "./revocation.ts";

const SHA = "ab".repeat(32);
const entry: RevokedCertificate = {
  serial: "4a3f",
  sha256: SHA,
  site: "paris",
  agent: "paris-01",
  notAfter: "2028-11-28T09:16:50.000Z",
  revokedAt: "2026-11-29T10:00:00.000Z",
  reason: "superseded",
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "smbfleet-revocation-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("normalising", () => {
  it("spells serials and fingerprints one way", () => {
    expect(normalizeSerial("00:4A:3F")).toBe("4a3f");
    expect(normalizeSerial("0")).toBe("0");
    expect(normalizeSerial("xyz")).toBeNull();
    expect(normalizeSerial("1".repeat(41))).toBeNull();
    expect(normalizeSha256(SHA.toUpperCase().match(/../g)!.join(":"))).toBe(SHA);
    expect(normalizeSha256("abcd")).toBeNull();
  });
});

describe("the list", () => {
  it("round-trips through its file format and finds by fingerprint or serial", () => {
    const text = formatRevocationList([entry, { ...entry, serial: null, sha256: "cd".repeat(32) }]);
    const list = parseRevocationList(text, "r.json");
    expect(list.entries).toEqual([entry, { ...entry, serial: null, sha256: "cd".repeat(32) }]);
    expect(list.find({ serial: "ffff", sha256: SHA })).toEqual(entry);
    expect(list.find({ serial: "4a3f", sha256: "ef".repeat(32) })).toEqual(entry);
    expect(list.find({ serial: "ffff", sha256: "ef".repeat(32) })).toBeUndefined();
    expect(parseRevocationList(formatRevocationList([]), "r.json").size).toBe(0);
  });

  it.each([
    ["{", /^revocation list r\.json: not valid JSON: /],
    ["[]", /^revocation list r\.json: expected an object \{ "version": 1, "revoked": \[\.\.\.\] \}$/],
    ['{"version": 2, "revoked": []}', /^revocation list r\.json: version must be 1, got 2$/],
    ['{"version": 1}', /^revocation list r\.json: "revoked" must be an array$/],
    ['{"version": 1, "revoked": [], "extra": 1}', /^revocation list r\.json: unknown key "extra"$/],
    ['{"version": 1, "revoked": [{}]}', /^revocation list r\.json: revoked\[0\] names no certificate/],
    [
      '{"version": 1, "revoked": [{"serial": "zz"}]}',
      /^revocation list r\.json: revoked\[0\]\.serial must be hexadecimal \(at most 40 digits\), got "zz"$/,
    ],
    [
      '{"version": 1, "revoked": [{"sha256": "ab"}]}',
      /^revocation list r\.json: revoked\[0\]\.sha256 must be 64 hexadecimal digits, got "ab"$/,
    ],
    [
      '{"version": 1, "revoked": [{"serial": "1", "reason": "lost"}]}',
      /^revocation list r\.json: revoked\[0\]\.reason must be "revoked" or "superseded", got "lost"$/,
    ],
    [
      '{"version": 1, "revoked": [{"serial": "1", "who": 1}]}',
      /^revocation list r\.json: revoked\[0\]: unknown key "who"$/,
    ],
  ])("refuses %s naming the file", (text, message) => {
    let thrown: unknown;
    try {
      parseRevocationList(text, "r.json");
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: "REVOCATION_INVALID" });
    expect((thrown as Error).message).toMatch(message);
  });

  it("reads a missing file as nothing revoked", async () => {
    const read = await readRevocationList(join(dir, "revoked.json"));
    expect(read.exists).toBe(false);
    expect(read.list).toBeInstanceOf(RevocationList);
    expect(read.list.size).toBe(0);
    await writeFile(join(dir, "revoked.json"), formatRevocationList([entry]));
    expect((await readRevocationList(join(dir, "revoked.json"))).list.size).toBe(1);
  });
});
