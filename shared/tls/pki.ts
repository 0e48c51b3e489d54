// The fleet PKI: one CA per fleet, one certificate for the aggregator, one per
// agent. The layout of a PKI directory D is
//   D/ca.pem  D/ca-key.pem  D/server.pem  D/server-key.pem  D/agents/<agent>.pem  D/agents/<agent>-key.pem
//   D/issued.jsonl  D/revoked.json   (every agent certificate issued, and those revoked: records.ts)
// Keys are ECDSA P-256: every TLS stack the fleet meets (OpenSSL in Node and
// grpc-js, BoringSSL, Go, load balancers) accepts it, keys and handshakes are
// small, and signing is cheap for an aggregator that takes 1,000 agents
// reconnecting at once after a restart (measured on one core here: 35k P-256
// signatures/s against 4.3k for RSA-2048; Ed25519 is as fast but its
// certificates are still refused by some TLS terminators and load balancers).
import { X509Certificate, createPrivateKey, generateKeyPair, type KeyObject } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { SmbfleetError, errorMessage } from "../errors.ts";
import { createCertificate, keyIdentifier, rawSubject, type SubjectAltNames } from "./certificate.ts";
import {
  dnsNameProblem,
  fleetNameProblem,
  identityUri,
  ipAddressProblem,
  type FleetIdentity,
} from "./names.ts";
import { addRevocations, appendIssued, recordPaths, revocationOf, withPkiLock } from "./records.ts";
import { certificateId, type RevokedCertificate } from "./revocation.ts";
import { identityFromPeerCertificate } from "./identity.ts";
import { writeFilesAtomically } from "./write-files.ts";

export const PKI_DEFAULTS = {
  /** Replacing the CA means visiting every site, so it outlives many leaf rotations. */
  caDays: 3650,
  /** A lost leaf key stops working on its own within two years; short enough, yet rare site visits. */
  leafDays: 730,
  /** Certificates start this far in the past so a site whose clock lags does not see "not yet valid". */
  backdateMs: 5 * 60_000,
  /** More than a century is a typo, not a plan. */
  maxDays: 36_500,
} as const;

const ORGANIZATION = "smbfleet";
const KEY_MODE = 0o600;
const CERT_MODE = 0o644;
const DAY_MS = 86_400_000;

export function pkiPaths(dir: string) {
  const root = resolve(dir);
  return {
    dir: root,
    ca: join(root, "ca.pem"),
    caKey: join(root, "ca-key.pem"),
    server: join(root, "server.pem"),
    serverKey: join(root, "server-key.pem"),
    agentsDir: join(root, "agents"),
    agent: (name: string) => join(root, "agents", `${name}.pem`),
    agentKey: (name: string) => join(root, "agents", `${name}-key.pem`),
  };
}

export interface IssueOptions {
  /** Validity in days; defaults to PKI_DEFAULTS.caDays for the CA, leafDays otherwise. */
  days?: number;
  /** Replace existing files instead of refusing with PKI_EXISTS. */
  force?: boolean;
  /** The issuing time; tests pass one to check validity windows. */
  now?: Date;
}

export interface CaFiles {
  cert: string;
  key: string;
  notAfter: Date;
}

/** Paths ready for loadTlsFiles({ ca, cert, key }). */
export interface IssuedFiles {
  ca: string;
  cert: string;
  key: string;
  notAfter: Date;
  /** True when notAfter was cut back to the CA's own expiry. */
  limitedByCa: boolean;
  /** The certificate's serial and SHA-256 fingerprint, lowercase hex (revocation.ts). */
  serial: string;
  sha256: string;
}

export interface AgentFiles extends IssuedFiles {
  /** The certificate this one replaced (--force), now on the revocation list; null when there was none. */
  superseded: RevokedCertificate | null;
  /** D/revoked.json. */
  revocationList: string;
}

export interface ServerNames {
  dns?: readonly string[];
  ip?: readonly string[];
}

const generateEcKeyPair = promisify(generateKeyPair);

async function newKeyPair(): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return generateEcKeyPair("ec", { namedCurve: "P-256" });
}

function validityDays(days: number | undefined, fallback: number): number {
  const value = days ?? fallback;
  if (!Number.isInteger(value) || value < 1 || value > PKI_DEFAULTS.maxDays) {
    throw new SmbfleetError(
      "PKI_FAILED",
      `validity of ${value} days: must be a whole number from 1 to ${PKI_DEFAULTS.maxDays}`,
    );
  }
  return value;
}

function keyPem(key: KeyObject): string {
  return key.export({ type: "pkcs8", format: "pem" }).toString();
}

/** Creates the fleet CA: D/ca.pem and D/ca-key.pem (0600); D is created 0700 if missing. */
export async function initCa(dir: string, opts: IssueOptions = {}): Promise<CaFiles> {
  const paths = pkiPaths(dir);
  const days = validityDays(opts.days, PKI_DEFAULTS.caDays);
  const now = opts.now ?? new Date();
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const { publicKey, privateKey } = await newKeyPair();
  // A short key id in the name tells two fleets' CAs apart in any certificate listing.
  const id = keyIdentifier(publicKey).subarray(0, 4).toString("hex");
  const notAfter = new Date(now.getTime() + days * DAY_MS);
  const cert = createCertificate({
    role: { kind: "ca" },
    subject: { organization: ORGANIZATION, commonName: `smbfleet fleet CA ${id}` },
    subjectPublicKey: publicKey,
    signingKey: privateKey,
    notBefore: new Date(now.getTime() - PKI_DEFAULTS.backdateMs),
    notAfter,
  });
  await writeFilesAtomically(
    [
      { path: paths.caKey, content: keyPem(privateKey), mode: KEY_MODE },
      { path: paths.ca, content: cert, mode: CERT_MODE },
    ],
    opts.force ?? false,
  );
  return { cert: paths.ca, key: paths.caKey, notAfter };
}

interface LoadedCa {
  cert: X509Certificate;
  key: KeyObject;
}

async function loadCa(dir: string, now: Date): Promise<LoadedCa> {
  const paths = pkiPaths(dir);
  let certPem: Buffer;
  let keyPemText: Buffer;
  try {
    [certPem, keyPemText] = await Promise.all([readFile(paths.ca), readFile(paths.caKey)]);
  } catch (err) {
    const hint =
      (err as NodeJS.ErrnoException).code === "ENOENT" ? `; run 'smbfleet pki init --dir ${dir}' first` : "";
    throw new SmbfleetError("PKI_FAILED", `no usable fleet CA in ${paths.dir}: ${errorMessage(err)}${hint}`, {
      cause: err,
    });
  }
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(certPem);
    key = createPrivateKey(keyPemText);
  } catch (err) {
    throw new SmbfleetError("PKI_FAILED", `fleet CA in ${paths.dir} is not readable: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  if (!cert.ca) throw new SmbfleetError("PKI_FAILED", `${paths.ca} is not a CA certificate`);
  if (!cert.checkPrivateKey(key)) {
    throw new SmbfleetError("PKI_FAILED", `${paths.caKey} is not the private key of ${paths.ca}`);
  }
  if (cert.validToDate.getTime() <= now.getTime()) {
    throw new SmbfleetError(
      "PKI_FAILED",
      `fleet CA ${paths.ca} expired on ${cert.validToDate.toISOString()}`,
    );
  }
  return { cert, key };
}

async function issueLeaf(
  dir: string,
  role: "server" | "agent",
  subject: { commonName: string; organizationalUnit?: string },
  altNames: SubjectAltNames,
  target: { cert: string; key: string },
  opts: IssueOptions,
  loadedCa?: LoadedCa,
): Promise<IssuedFiles> {
  const now = opts.now ?? new Date();
  const days = validityDays(opts.days, PKI_DEFAULTS.leafDays);
  const ca = loadedCa ?? (await loadCa(dir, now));
  // agents/ holds keys too; created only once a CA is known to exist.
  await mkdir(dirname(target.key), { recursive: true, mode: 0o700 });
  const wanted = new Date(now.getTime() + days * DAY_MS);
  // A leaf cannot be trusted past its CA; say so rather than issue a certificate that lies.
  const limitedByCa = wanted.getTime() > ca.cert.validToDate.getTime();
  const notAfter = limitedByCa ? ca.cert.validToDate : wanted;
  const { publicKey, privateKey } = await newKeyPair();
  const cert = createCertificate({
    role: { kind: role, altNames },
    subject: { organization: ORGANIZATION, ...subject },
    issuerName: rawSubject(ca.cert.raw),
    subjectPublicKey: publicKey,
    issuerPublicKey: ca.cert.publicKey,
    signingKey: ca.key,
    notBefore: new Date(now.getTime() - PKI_DEFAULTS.backdateMs),
    notAfter,
  });
  await writeFilesAtomically(
    [
      { path: target.key, content: keyPem(privateKey), mode: KEY_MODE },
      { path: target.cert, content: cert, mode: CERT_MODE },
    ],
    opts.force ?? false,
  );
  const id = certificateId(new X509Certificate(cert));
  return { ca: pkiPaths(dir).ca, cert: target.cert, key: target.key, notAfter, limitedByCa, ...id };
}

/** Issues the aggregator's certificate (serverAuth) with a SAN for every DNS name and IP address. */
export async function issueServer(dir: string, names: ServerNames & IssueOptions): Promise<IssuedFiles> {
  const dns = [...(names.dns ?? [])];
  const ip = [...(names.ip ?? [])];
  const problems = [...dns.map(dnsNameProblem), ...ip.map(ipAddressProblem)].filter((p) => p !== null);
  if (problems.length > 0) throw new SmbfleetError("PKI_FAILED", problems.join("; "));
  const first = dns[0] ?? ip[0];
  if (first === undefined) {
    throw new SmbfleetError("PKI_FAILED", "a server certificate needs at least one DNS name or IP address");
  }
  const paths = pkiPaths(dir);
  return issueLeaf(
    dir,
    "server",
    { commonName: first },
    { dns, ip },
    { cert: paths.server, key: paths.serverKey },
    names,
  );
}

/**
 * Issues an agent's certificate (clientAuth): subject CN=<agent>, OU=<site>,
 * O=smbfleet, and the authoritative SAN URI urn:smbfleet:site:<site>:agent:<agent>.
 * Records it in D/issued.jsonl; with `force`, the certificate it replaces is
 * added to D/revoked.json as superseded, so a copy of the old key stops
 * working at the aggregator instead of staying valid until it expires.
 */
export async function issueAgent(dir: string, opts: FleetIdentity & IssueOptions): Promise<AgentFiles> {
  const problems = [fleetNameProblem("site", opts.site), fleetNameProblem("agent", opts.agent)].filter(
    (p) => p !== null,
  );
  if (problems.length > 0) throw new SmbfleetError("PKI_FAILED", problems.join("; "));
  const paths = pkiPaths(dir);
  const now = opts.now ?? new Date();
  // Before the lock, which is a file in D: no CA, no D, nothing created.
  const ca = await loadCa(dir, now);
  return withPkiLock(dir, async () => {
    const previous = opts.force === true ? await currentCertificate(paths.agent(opts.agent)) : null;
    const files = await issueLeaf(
      dir,
      "agent",
      { commonName: opts.agent, organizationalUnit: opts.site },
      { uri: [identityUri(opts)] },
      { cert: paths.agent(opts.agent), key: paths.agentKey(opts.agent) },
      opts,
      ca,
    );
    await appendIssued(dir, {
      serial: files.serial,
      sha256: files.sha256,
      site: opts.site,
      agent: opts.agent,
      // As the certificate holds it: whole seconds.
      notAfter: new Date(Math.floor(files.notAfter.getTime() / 1000) * 1000).toISOString(),
      issuedAt: now.toISOString(),
    });
    let superseded: RevokedCertificate | null = null;
    if (previous !== null) {
      superseded = revocationOf(previous, "superseded", now);
      await addRevocations(dir, [superseded]);
    }
    return { ...files, superseded, revocationList: recordPaths(dir).revoked };
  });
}

/** The certificate at `path` as a revocation list would name it, or null when there is none to read. */
export async function currentCertificate(path: string) {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(await readFile(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new SmbfleetError("PKI_FAILED", `${path} is not a readable certificate: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const identity = identityFromPeerCertificate(cert);
  return {
    ...certificateId(cert),
    site: identity?.site ?? null,
    agent: identity?.agent ?? null,
    notAfter: cert.validToDate.toISOString(),
  };
}
