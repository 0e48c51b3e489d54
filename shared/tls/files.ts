// Loads the CA, certificate and key that a role's config names, and checks
// them before any connection is tried: a role that would only fail at its
// first handshake (or, worse, in every agent's log at HQ) fails at start-up
// instead, with a message that names the file and what is wrong with it.
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { SmbfleetError, errorMessage } from "../errors.ts";

export interface TlsPaths {
  ca: string;
  cert: string;
  key: string;
}

export interface TlsFiles {
  /** PEM bytes as read, for grpc-js. `ca` may hold several CA certificates (during a CA rotation). */
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  paths: TlsPaths;
  certificate: X509Certificate;
  notAfter: Date;
  /** Problems that do not stop the role (a key readable by others), for the caller to log. */
  warnings: string[];
}

type Role = keyof TlsPaths;

function invalid(role: Role, path: string, problem: string, cause?: unknown): SmbfleetError {
  return new SmbfleetError(
    "TLS_INVALID",
    `${role} file ${path} ${problem}`,
    cause === undefined ? {} : { cause },
  );
}

async function readRole(role: Role, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem =
      code === "ENOENT"
        ? "does not exist"
        : code === "EACCES"
          ? "is not readable (permission denied)"
          : code === "EISDIR"
            ? "is a directory, not a file"
            : `cannot be read: ${errorMessage(err)}`;
    throw invalid(role, path, problem, err);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

function parseCertificates(role: Role, path: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString("latin1").match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0)
    throw invalid(role, path, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  try {
    return blocks.map((block) => new X509Certificate(block));
  } catch (err) {
    throw invalid(role, path, `is not a valid certificate: ${errorMessage(err)}`, err);
  }
}

function checkValidity(role: Role, path: string, cert: X509Certificate, now: Date): void {
  if (cert.validFromDate.getTime() > now.getTime()) {
    throw invalid(
      role,
      path,
      `is not valid until ${cert.validFromDate.toISOString()} (is this machine's clock right?)`,
    );
  }
  if (cert.validToDate.getTime() <= now.getTime()) {
    throw invalid(role, path, `expired on ${cert.validToDate.toISOString()}`);
  }
}

/**
 * Reads and checks a CA bundle, a certificate and its key: each file exists
 * and parses, the certificate is issued by a CA in the bundle, is valid now,
 * and the key belongs to it. Throws TLS_INVALID naming the file otherwise.
 */
export async function loadTlsFiles(paths: TlsPaths, now: Date = new Date()): Promise<TlsFiles> {
  const [ca, cert, key] = await Promise.all([
    readRole("ca", paths.ca),
    readRole("cert", paths.cert),
    readRole("key", paths.key),
  ]);
  const authorities = parseCertificates("ca", paths.ca, ca);
  for (const authority of authorities) {
    if (!authority.ca)
      throw invalid("ca", paths.ca, `holds ${authority.subject.replace(/\n/g, ", ")}, which is not a CA`);
    checkValidity("ca", paths.ca, authority, now);
  }
  const [certificate] = parseCertificates("cert", paths.cert, cert);
  if (certificate === undefined) throw invalid("cert", paths.cert, "holds no certificate");
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw invalid("key", paths.key, `is not an unencrypted PEM private key: ${errorMessage(err)}`, err);
  }
  if (
    !authorities.some(
      (authority) => certificate.checkIssued(authority) && certificate.verify(authority.publicKey),
    )
  ) {
    throw invalid("cert", paths.cert, `was not issued by the CA in ${paths.ca}`);
  }
  checkValidity("cert", paths.cert, certificate, now);
  if (!certificate.checkPrivateKey(privateKey)) {
    throw invalid("key", paths.key, `is not the private key of ${paths.cert}`);
  }
  const warnings: string[] = [];
  const mode = (await stat(paths.key)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    warnings.push(
      `key file ${paths.key} is open to group or others (mode 0${mode.toString(8)}); chmod 600 it`,
    );
  }
  return { ca, cert, key, paths, certificate, notAfter: certificate.validToDate, warnings };
}
