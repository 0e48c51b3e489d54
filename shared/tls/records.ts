// What a PKI directory remembers about the agent certificates it issued:
//   D/issued.jsonl   one line per certificate issued: serial, sha256, site, agent, not_after, issued_at
//   D/revoked.json   the revocation list the aggregator reads (revocation.ts)
// The index is appended to (one short write per certificate, so issuing a
// thousand agents stays linear); the list is rewritten whole through a
// temporary file and rename, so an aggregator polling it never reads half a
// file. Both change under D/.pki.lock, which serialises `smbfleet pki`
// commands on one directory (and issuing in one process).
import { randomBytes } from "node:crypto";
import { open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SmbfleetError, errorMessage } from "../errors.ts";
import {
  formatRevocationList,
  normalizeSerial,
  normalizeSha256,
  readRevocationList,
  type CertificateId,
  type RevocationReason,
  type RevokedCertificate,
} from "./revocation.ts";
import { processAlive } from "../process-alive.ts";

export function recordPaths(dir: string) {
  const root = resolve(dir);
  return {
    issued: join(root, "issued.jsonl"),
    revoked: join(root, "revoked.json"),
    lock: join(root, ".pki.lock"),
  };
}

export interface IssuedRecord extends CertificateId {
  site: string;
  agent: string;
  notAfter: string;
  issuedAt: string;
}

/** Another `smbfleet pki` command holds the lock at most this long before we give up and say so. */
const LOCK_WAIT_MS = 10_000;
const LOCK_RETRY_MS = 25;

const inProcess = new Map<string, Promise<unknown>>();

async function takeLock(path: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(path, "wx", 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    // A lock left by a process that died (killed mid-command) is taken over.
    const holder = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
    if (Number.isInteger(holder) && holder > 0 && !processAlive(holder)) {
      await rm(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new SmbfleetError(
        "PKI_FAILED",
        `${path} is held by another smbfleet pki command (pid ${holder}); remove it if none is running`,
      );
    }
    await sleep(LOCK_RETRY_MS);
  }
}

/** Runs `fn` holding D/.pki.lock; calls in this process queue, other processes wait up to 10 s. */
export async function withPkiLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const { lock } = recordPaths(dir);
  const previous = inProcess.get(lock) ?? Promise.resolve();
  const run = previous
    .catch(() => undefined)
    .then(async () => {
      await takeLock(lock);
      try {
        return await fn();
      } finally {
        await rm(lock, { force: true });
      }
    });
  inProcess.set(lock, run);
  try {
    return await run;
  } finally {
    if (inProcess.get(lock) === run) inProcess.delete(lock);
  }
}

/** Appends one certificate to D/issued.jsonl (flushed before returning). */
export async function appendIssued(dir: string, record: IssuedRecord): Promise<void> {
  const line = JSON.stringify({
    serial: record.serial,
    sha256: record.sha256,
    site: record.site,
    agent: record.agent,
    not_after: record.notAfter,
    issued_at: record.issuedAt,
  });
  const handle = await open(recordPaths(dir).issued, "a", 0o644);
  try {
    await handle.appendFile(`${line}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Every certificate D/issued.jsonl lists, oldest first; none when the file does not exist. */
export async function readIssued(dir: string): Promise<IssuedRecord[]> {
  const file = recordPaths(dir).issued;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new SmbfleetError("PKI_FAILED", `${file} cannot be read: ${errorMessage(err)}`, { cause: err });
  }
  const records: IssuedRecord[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const bad = (problem: string) => new SmbfleetError("PKI_FAILED", `${file}:${i + 1}: ${problem}`);
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      throw bad(`not JSON: ${errorMessage(err)}`);
    }
    const text = (key: string) => (typeof raw[key] === "string" ? raw[key] : "");
    const serial = normalizeSerial(text("serial"));
    const sha256 = normalizeSha256(text("sha256"));
    if (serial === null || sha256 === null) throw bad("serial or sha256 missing or not hexadecimal");
    records.push({
      serial,
      sha256,
      site: text("site"),
      agent: text("agent"),
      notAfter: text("not_after"),
      issuedAt: text("issued_at"),
    });
  });
  return records;
}

export interface Revocation {
  certificate: RevokedCertificate;
  /** It was on the list already (nothing changed for it). */
  already: boolean;
}

/** The list entry for an issued certificate. */
export function revocationOf(
  record: {
    serial: string | null;
    sha256: string | null;
    site?: string | null;
    agent?: string | null;
    notAfter?: string | null;
  },
  reason: RevocationReason,
  now: Date,
): RevokedCertificate {
  return {
    serial: record.serial,
    sha256: record.sha256,
    site: record.site ?? null,
    agent: record.agent ?? null,
    notAfter: record.notAfter ?? null,
    revokedAt: now.toISOString(),
    reason,
  };
}

/**
 * Adds `certificates` to D/revoked.json (creating it), skipping any already
 * listed, and returns each with whether it was. Call under withPkiLock.
 */
export async function addRevocations(
  dir: string,
  certificates: readonly RevokedCertificate[],
): Promise<{ revocations: Revocation[]; listed: number }> {
  const file = recordPaths(dir).revoked;
  const { list } = await readRevocationList(file);
  const entries = [...list.entries];
  const revocations: Revocation[] = [];
  for (const certificate of certificates) {
    const listed = entries.find(
      (e) =>
        (certificate.sha256 !== null && e.sha256 === certificate.sha256) ||
        (certificate.serial !== null && e.serial === certificate.serial),
    );
    if (listed !== undefined) {
      revocations.push({ certificate: listed, already: true });
      continue;
    }
    entries.push(certificate);
    revocations.push({ certificate, already: false });
  }
  if (revocations.some((r) => !r.already)) {
    const temporary = `${file}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      await writeFile(temporary, formatRevocationList(entries), { mode: 0o644, flush: true });
      await rename(temporary, file);
    } catch (err) {
      await rm(temporary, { force: true });
      throw new SmbfleetError("PKI_FAILED", `writing ${file}: ${errorMessage(err)}`, { cause: err });
    }
  }
  return { revocations, listed: entries.length };
}
