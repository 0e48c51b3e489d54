// Encodes and signs the three kinds of certificate the fleet uses (CA, server,
// agent), and reads back the few fields node:crypto does not expose as data:
// the raw subject name (a leaf's issuer must equal its CA's subject byte for
// byte) and the Subject Alternative Name entries (parsed from DER, not from
// Node's display string, so no quoting rule can confuse an identity).
import { createHash, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import {
  bitString,
  boolean,
  decodeOid,
  explicit,
  implicitPrimitive,
  octetString,
  oid,
  readChildren,
  readElement,
  sequence,
  set,
  smallInteger,
  time,
  unsignedInteger,
  utf8String,
  TAG,
  type DerElement,
} from "./der.ts";

export const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

/** Subject attributes, most general first (X.500 order): O, then OU, then CN. */
export interface SubjectName {
  organization: string;
  organizationalUnit?: string;
  commonName: string;
}

export interface SubjectAltNames {
  dns?: readonly string[];
  ip?: readonly string[];
  uri?: readonly string[];
}

export type CertificateRole =
  | { kind: "ca" }
  | { kind: "server"; altNames: SubjectAltNames }
  | { kind: "agent"; altNames: SubjectAltNames };

export interface CertificateSpec {
  role: CertificateRole;
  subject: SubjectName;
  /** The CA's subject as encoded in its certificate; absent for the self-signed CA. */
  issuerName?: Buffer;
  subjectPublicKey: KeyObject;
  /** The CA's public key, for the Authority Key Identifier; absent for the CA itself. */
  issuerPublicKey?: KeyObject;
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
}

function encodeName(name: SubjectName): Buffer {
  const rdn = (type: string, value: string) => set(sequence(oid(type), utf8String(value)));
  const parts = [rdn(OID.organization, name.organization)];
  if (name.organizationalUnit !== undefined) parts.push(rdn(OID.organizationalUnit, name.organizationalUnit));
  parts.push(rdn(OID.commonName, name.commonName));
  return sequence(...parts);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. An identifier, not a security check. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: "spki", format: "der" });
  const [, keyBits] = readChildren(readElement(spki).content);
  if (keyBits === undefined || keyBits.tag !== TAG.bitString) throw new Error("public key without key bits");
  return createHash("sha1").update(keyBits.content.subarray(1)).digest();
}

function extension(type: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? sequence(oid(type), boolean(true), octetString(value))
    : sequence(oid(type), octetString(value));
}

function encodeAltNames(names: SubjectAltNames): Buffer {
  const entries: Buffer[] = [];
  for (const dns of names.dns ?? []) entries.push(implicitPrimitive(2, Buffer.from(dns, "ascii")));
  for (const ip of names.ip ?? []) entries.push(implicitPrimitive(7, ipBytes(ip)));
  for (const uri of names.uri ?? []) entries.push(implicitPrimitive(6, Buffer.from(uri, "ascii")));
  return sequence(...entries);
}

function ipBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split(".").map(Number));
  if (family !== 6) throw new RangeError(`not an IP address: ${ip}`);
  // Expand "::" and any embedded IPv4 tail into eight 16-bit groups.
  const [head = "", tail] = ip.split("::") as [string, string | undefined];
  const groups = (part: string): number[] =>
    part === ""
      ? []
      : part.split(":").flatMap((g) => {
          if (!g.includes(".")) return [parseInt(g, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = g.split(".").map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = Buffer.alloc(16);
  all.forEach((g, i) => bytes.writeUInt16BE(g, i * 2));
  return bytes;
}

function extensionsFor(spec: CertificateSpec): Buffer[] {
  const ski = keyIdentifier(spec.subjectPublicKey);
  const list = [extension(OID.subjectKeyIdentifier, false, octetString(ski))];
  if (spec.issuerPublicKey !== undefined) {
    const aki = sequence(implicitPrimitive(0, keyIdentifier(spec.issuerPublicKey)));
    list.push(extension(OID.authorityKeyIdentifier, false, aki));
  }
  const role = spec.role;
  switch (role.kind) {
    case "ca":
      // pathLen 0: the fleet CA signs leaves only, never another CA.
      list.push(extension(OID.basicConstraints, true, sequence(boolean(true), smallInteger(0))));
      // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000_0110, one unused bit.
      list.push(extension(OID.keyUsage, true, bitString(Buffer.from([0x06]), 1)));
      break;
    case "server":
    case "agent": {
      list.push(extension(OID.basicConstraints, true, sequence()));
      // digitalSignature (bit 0) only: ECDHE does the key exchange, the key only signs.
      list.push(extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)));
      const usage = role.kind === "server" ? OID.serverAuth : OID.clientAuth;
      list.push(extension(OID.extKeyUsage, false, sequence(oid(usage))));
      // RFC 5280 §4.2.1.6 demands "critical" only when the subject is empty; ours never is.
      list.push(extension(OID.subjectAltName, false, encodeAltNames(role.altNames)));
      break;
    }
  }
  return list;
}

/** Builds and signs one certificate; returns it PEM-encoded. */
export function createCertificate(spec: CertificateSpec): string {
  const signatureAlgorithm = sequence(oid(OID.ecdsaWithSha256));
  // 16 random bytes, top bit clear (positive) and next bit set (fixed length): RFC 5280 allows 20.
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40;
  const subject = encodeName(spec.subject);
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(serial),
    signatureAlgorithm,
    spec.issuerName ?? subject,
    sequence(time(spec.notBefore), time(spec.notAfter)),
    subject,
    spec.subjectPublicKey.export({ type: "spki", format: "der" }),
    explicit(3, sequence(...extensionsFor(spec))),
  );
  const signature = sign("sha256", tbs, { key: spec.signingKey, dsaEncoding: "der" });
  return toPem(sequence(tbs, signatureAlgorithm, bitString(signature)), "CERTIFICATE");
}

export function toPem(der: Buffer, label: string): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

interface TbsFields {
  subject: DerElement;
  extensions: Map<string, Buffer>;
}

function readTbs(raw: Buffer): TbsFields {
  const [tbs] = readChildren(readElement(raw).content);
  if (tbs === undefined) throw new RangeError("certificate without tbsCertificate");
  const fields = readChildren(tbs.content);
  // An explicit [0] version comes first in v2/v3 certificates; v1 has none.
  const rest = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
  const subject = rest[4];
  if (subject === undefined) throw new RangeError("certificate without subject");
  const extensions = new Map<string, Buffer>();
  const wrapper = rest.find((f) => f.tag === 0xa3);
  const [list] = wrapper === undefined ? [] : readChildren(wrapper.content);
  for (const ext of list === undefined ? [] : readChildren(list.content)) {
    const parts = readChildren(ext.content);
    const id = parts[0];
    const value = parts[parts.length - 1];
    if (id?.tag === TAG.oid && value?.tag === TAG.octetString)
      extensions.set(decodeOid(id.content), value.content);
  }
  return { subject, extensions };
}

/** The subject name exactly as encoded, to be copied into the issuer field of certificates it signs. */
export function rawSubject(raw: Buffer): Buffer {
  return Buffer.from(readTbs(raw).subject.encoded);
}

/** The DNS, IP and URI entries of the Subject Alternative Name extension (other kinds are skipped). */
export function readAltNames(raw: Buffer): Required<{ [K in keyof SubjectAltNames]: string[] }> {
  const names = { dns: [] as string[], ip: [] as string[], uri: [] as string[] };
  const value = readTbs(raw).extensions.get(OID.subjectAltName);
  if (value === undefined) return names;
  for (const entry of readChildren(readElement(value).content)) {
    if (entry.tag === 0x82) names.dns.push(entry.content.toString("latin1"));
    if (entry.tag === 0x86) names.uri.push(entry.content.toString("latin1"));
    if (entry.tag === 0x87) names.ip.push(formatIp(entry.content));
  }
  return names;
}

function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join(".");
  const groups: string[] = [];
  for (let i = 0; i + 1 < bytes.length; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(":");
}
