import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../shared/logger.ts";
import { formatRevocationList, type RevokedCertificate } from "../../../shared/tls/revocation.ts";
import { RevocationWatch } from "./revocation-watch.ts";

const entry = (serial: string): RevokedCertificate => ({
  serial,
  sha256: null,
  site: null,
  agent: null,
  notAfter: null,
  revokedAt: "2026-01-01T00:00:00.000Z",
  reason: "revoked",
});
const id = (serial: string) => ({ serial, sha256: "00".repeat(32) });

let dir: string;
let file: string;
let watch: RevocationWatch | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "smbfleet-revwatch-"));
  file = join(dir, "revoked.json");
});
afterEach(async () => {
  await watch?.stop();
  watch = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function changed(w: RevocationWatch): Promise<number> {
  return new Promise((resolve) => {
    const off = w.onChange((list) => {
      off();
      resolve(list.size);
    });
  });
}

describe("RevocationWatch", () => {
  it("starts with nothing revoked when the file is missing, then follows the file", async () => {
    watch = await RevocationWatch.start(file, silentLogger(), 20);
    expect(watch.current().size).toBe(0);
    let next = changed(watch);
    await writeFile(file, formatRevocationList([entry("a1")]));
    expect(await next).toBe(1);
    expect(watch.current().find(id("a1"))).toBeDefined();

    // A broken file keeps the list in force; the next good one replaces it.
    await writeFile(file, '{"version": 1, "revoked": [');
    await new Promise((r) => setTimeout(r, 100));
    expect(watch.current().find(id("a1"))).toBeDefined();
    next = changed(watch);
    await writeFile(file, formatRevocationList([entry("a1"), entry("b2")]));
    expect(await next).toBe(2);

    next = changed(watch);
    await rm(file);
    expect(await next).toBe(0);
  });

  it("refuses to start on a malformed list, naming the file", async () => {
    await writeFile(file, "[]");
    await expect(RevocationWatch.start(file, silentLogger())).rejects.toThrow(
      `revocation list ${file}: expected an object`,
    );
  });
});
