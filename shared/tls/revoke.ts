// `smbfleet pki revoke`: put certificates on D/revoked.json. An agent's
// current certificate (D/agents/A.pem), every certificate ever issued to it
// (D/issued.jsonl), or one certificate by serial or SHA-256 fingerprint. A
// serial or fingerprint the index does not know (a certificate issued before
// the index existed, or elsewhere) is still listed, by what was given.
import { stat } from "node:fs/promises";
import { SmbfleetError } from "../errors.ts";
import { currentCertificate, pkiPaths } from "./pki.ts";
import {
  addRevocations,
  readIssued,
  recordPaths,
  revocationOf,
  withPkiLock,
  type Revocation,
} from "./records.ts";
import { normalizeSerial, normalizeSha256 } from "./revocation.ts";

export type RevokeSelector = { agent: string; all?: boolean } | { serial: string } | { sha256: string };

export interface RevokeOutcome {
  revocations: Revocation[];
  /** How many certificates the list names now. */
  listed: number;
  /** The list written. */
  file: string;
  /** The serial or fingerprint given is not in D/issued.jsonl; it was listed as given. */
  unindexed: boolean;
}

/** A certificate to list: serial, fingerprint, or both, and what else is known of it. */
type Candidate = Parameters<typeof revocationOf>[0];

function failed(message: string): SmbfleetError {
  return new SmbfleetError("PKI_FAILED", message);
}

async function candidates(
  dir: string,
  selector: RevokeSelector,
): Promise<{ found: Candidate[]; unindexed: boolean }> {
  const issued = await readIssued(dir);
  if ("agent" in selector) {
    const path = pkiPaths(dir).agent(selector.agent);
    const current = await currentCertificate(path);
    const indexed = (sha256: string) => issued.find((r) => r.sha256 === sha256);
    if (selector.all !== true) {
      if (current === null) {
        throw failed(
          `${path} does not exist, so agent ${selector.agent} has no current certificate; ` +
            "--all revokes every certificate issued to it, --serial or --fingerprint one of them",
        );
      }
      return { found: [{ ...current, ...indexed(current.sha256) }], unindexed: false };
    }
    const found: Candidate[] = issued.filter((r) => r.agent === selector.agent);
    if (current !== null && indexed(current.sha256) === undefined) found.push(current);
    if (found.length === 0) {
      throw failed(
        `no certificate of agent ${selector.agent} in ${recordPaths(dir).issued} or ${path}: nothing to revoke`,
      );
    }
    return { found, unindexed: false };
  }
  if ("serial" in selector) {
    const serial = normalizeSerial(selector.serial);
    if (serial === null) throw failed(`serial ${JSON.stringify(selector.serial)} is not hexadecimal`);
    const found = issued.filter((r) => r.serial === serial);
    return found.length > 0
      ? { found, unindexed: false }
      : { found: [{ serial, sha256: null }], unindexed: true };
  }
  const sha256 = normalizeSha256(selector.sha256);
  if (sha256 === null) {
    throw failed(`fingerprint ${JSON.stringify(selector.sha256)} is not 64 hexadecimal digits`);
  }
  const found = issued.filter((r) => r.sha256 === sha256);
  return found.length > 0
    ? { found, unindexed: false }
    : { found: [{ serial: null, sha256 }], unindexed: true };
}

/** Adds the selected certificates to D/revoked.json (those already there are reported, not repeated). */
export async function revokeCertificates(
  dir: string,
  selector: RevokeSelector,
  now: Date = new Date(),
): Promise<RevokeOutcome> {
  const root = pkiPaths(dir).dir;
  try {
    if (!(await stat(root)).isDirectory()) throw failed(`${root} is not a directory`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw failed(`no PKI directory ${root}`);
    throw err;
  }
  return withPkiLock(dir, async () => {
    const { found, unindexed } = await candidates(dir, selector);
    const { revocations, listed } = await addRevocations(
      dir,
      found.map((c) => revocationOf(c, "revoked", now)),
    );
    return { revocations, listed, file: recordPaths(dir).revoked, unindexed };
  });
}
