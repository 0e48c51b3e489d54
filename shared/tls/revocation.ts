// The revocation list: the agent certificates the aggregator refuses although
// the fleet CA signed them and they have not expired. `smbfleet pki` writes
// it as D/revoked.json (revoking an agent's previous certificate when it is
// re-issued, and on `pki revoke`); the aggregator reads the copy its
// `[tls] revoked` names and re-reads it when it changes.
//
//   { "version": 1,
//     "revoked": [ { "serial": "50195bc7…", "sha256": "9f86d081…", "site": "paris", "agent": "paris-01",
//                    "not_after": "2028-11-28T09:16:50.000Z", "revoked_at": "2026-11-29T10:02:11.000Z",
//                    "reason": "superseded" } ] }
//
// JSON rather than an X.509 CRL: the list only ever denies, so it needs no
// signature (whoever can edit it could edit the aggregator's config too), an
// operator can read and diff it, and nothing expires on a schedule the way a
// CRL's nextUpdate does, which would lock out the whole fleet if forgotten.
// A certificate is revoked when its SHA-256 fingerprint or its serial is
// listed; serials are 127 random bits (certificate.ts), so a serial names one
// certificate in practice, and an entry may carry either or both.
import { X509Certificate, createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { SmbfleetError, errorMessage } from "../errors.ts";

export const REVOCATION_FORMAT_VERSION = 1;

/** Why a certificate is on the list: replaced by `pki issue-agent --force`, or `pki revoke`. */
export type RevocationReason = "superseded" | "revoked";

/** Serial and fingerprint, both lowercase hex without separators. */
export interface CertificateId {
  serial: string;
  sha256: string;
}

export interface RevokedCertificate {
  /** At least one of serial and sha256 is set. */
  serial: string | null;
  sha256: string | null;
  site: string | null;
  agent: string | null;
  notAfter: string | null;
  revokedAt: string;
  reason: RevocationReason;
}

/** A serial as Node, OpenSSL or an operator spells it ("4F:1A…", "04f1a…") in one form: lowercase, no leading zeros. */
export function normalizeSerial(value: string): string | null {
  const hex = value.replace(/[:\s]/g, "").toLowerCase();
  // RFC 5280 §4.1.2.2: at most 20 octets.
  if (!/^[0-9a-f]{1,40}$/.test(hex)) return null;
  return hex.replace(/^0+(?=.)/, "");
}

/** A SHA-256 fingerprint ("AB:CD:…" as Node prints it, or plain hex) as 64 lowercase hex digits. */
export function normalizeSha256(value: string): string | null {
  const hex = value.replace(/[:\s]/g, "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}

/** The serial and SHA-256 fingerprint of a certificate (X509Certificate, or its DER bytes). */
export function certificateId(cert: X509Certificate | Buffer): CertificateId {
  const x509 = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return {
    serial: normalizeSerial(x509.serialNumber) ?? x509.serialNumber.toLowerCase(),
    sha256: createHash("sha256").update(x509.raw).digest("hex"),
  };
}

/** The certificates a list revokes, looked up by fingerprint or serial. */
export class RevocationList {
  readonly entries: readonly RevokedCertificate[];
  readonly #bySha256 = new Map<string, RevokedCertificate>();
  readonly #bySerial = new Map<string, RevokedCertificate>();

  constructor(entries: readonly RevokedCertificate[] = []) {
    this.entries = entries;
    for (const entry of entries) {
      if (entry.sha256 !== null) this.#bySha256.set(entry.sha256, entry);
      if (entry.serial !== null) this.#bySerial.set(entry.serial, entry);
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** The entry that revokes `id`, or undefined when it is not revoked. */
  find(id: CertificateId): RevokedCertificate | undefined {
    return this.#bySha256.get(id.sha256) ?? this.#bySerial.get(id.serial);
  }
}

function invalid(file: string, problem: string, cause?: unknown): SmbfleetError {
  return new SmbfleetError(
    "REVOCATION_INVALID",
    `revocation list ${file}: ${problem}`,
    cause === undefined ? {} : { cause },
  );
}

const ENTRY_KEYS = new Set(["serial", "sha256", "site", "agent", "not_after", "revoked_at", "reason"]);

function optionalString(file: string, where: string, entry: Record<string, unknown>, key: string) {
  const value = entry[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw invalid(file, `${where}.${key} must be a string`);
  return value;
}

function parseEntry(file: string, index: number, raw: unknown): RevokedCertificate {
  const where = `revoked[${index}]`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw invalid(file, `${where} must be an object`);
  }
  const entry = raw as Record<string, unknown>;
  for (const key of Object.keys(entry)) {
    if (!ENTRY_KEYS.has(key)) throw invalid(file, `${where}: unknown key "${key}"`);
  }
  const serialText = optionalString(file, where, entry, "serial");
  const shaText = optionalString(file, where, entry, "sha256");
  const serial = serialText === null ? null : normalizeSerial(serialText);
  const sha256 = shaText === null ? null : normalizeSha256(shaText);
  if (serialText !== null && serial === null) {
    throw invalid(
      file,
      `${where}.serial must be hexadecimal (at most 40 digits), got ${JSON.stringify(serialText)}`,
    );
  }
  if (shaText !== null && sha256 === null) {
    throw invalid(file, `${where}.sha256 must be 64 hexadecimal digits, got ${JSON.stringify(shaText)}`);
  }
  if (serial === null && sha256 === null)
    throw invalid(file, `${where} names no certificate (serial or sha256)`);
  const reason = optionalString(file, where, entry, "reason") ?? "revoked";
  if (reason !== "revoked" && reason !== "superseded") {
    throw invalid(file, `${where}.reason must be "revoked" or "superseded", got ${JSON.stringify(reason)}`);
  }
  return {
    serial,
    sha256,
    site: optionalString(file, where, entry, "site"),
    agent: optionalString(file, where, entry, "agent"),
    notAfter: optionalString(file, where, entry, "not_after"),
    revokedAt: optionalString(file, where, entry, "revoked_at") ?? "",
    reason,
  };
}

/** Parses a revocation list; throws REVOCATION_INVALID naming `file` and what is wrong. */
export function parseRevocationList(text: string, file: string): RevocationList {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalid(file, `not valid JSON: ${errorMessage(err)}`, err);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw invalid(file, 'expected an object { "version": 1, "revoked": [...] }');
  }
  const { version, revoked, ...rest } = doc as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw invalid(file, `unknown key "${unknown}"`);
  if (version !== REVOCATION_FORMAT_VERSION) {
    throw invalid(file, `version must be ${REVOCATION_FORMAT_VERSION}, got ${JSON.stringify(version)}`);
  }
  if (!Array.isArray(revoked)) throw invalid(file, '"revoked" must be an array');
  return new RevocationList(revoked.map((entry, i) => parseEntry(file, i, entry)));
}

/**
 * Reads the list in `file`. A file that does not exist revokes nothing (a
 * fleet that never revoked has none); one that exists must parse.
 */
export async function readRevocationList(file: string): Promise<{ list: RevocationList; exists: boolean }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      return { list: new RevocationList(), exists: false };
    throw invalid(file, `cannot be read: ${errorMessage(err)}`, err);
  }
  return { list: parseRevocationList(text, file), exists: true };
}

/** The file's text for `entries`: one entry per line, so a diff shows each revocation. */
export function formatRevocationList(entries: readonly RevokedCertificate[]): string {
  const lines = entries.map((e) =>
    JSON.stringify({
      serial: e.serial ?? undefined,
      sha256: e.sha256 ?? undefined,
      site: e.site ?? undefined,
      agent: e.agent ?? undefined,
      not_after: e.notAfter ?? undefined,
      revoked_at: e.revokedAt,
      reason: e.reason,
    }),
  );
  const body = lines.length === 0 ? "[]" : `[\n    ${lines.join(",\n    ")}\n  ]`;
  return `{\n  "version": ${REVOCATION_FORMAT_VERSION},\n  "revoked": ${body}\n}\n`;
}
