// Value rules shared by the three config files: listen addresses, host:port,
// names of sites and agents, file paths resolved against the config's folder.
import { statSync } from "node:fs";
import { BlockList, isIP } from "node:net";
import { isAbsolute, join, resolve } from "node:path";
import type { ListenAddress } from "./types.ts";
import type { TableReader } from "./reader.ts";

/**
 * Site and agent names: they appear in certificates, metric labels, URLs and
 * database keys, so they are kept to one unambiguous spelling.
 */
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;
const NAME_RULE =
  'must be 1 to 63 lowercase letters, digits, ".", "-" or "_", starting and ending with a letter or digit';

export function isValidName(value: string): boolean {
  return NAME_PATTERN.test(value);
}

/** host:port, [v6]:port, or :port (all interfaces). Port 0 asks the OS for a free port. */
export function parseListenAddress(value: string): ListenAddress | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(value);
  if (m === null) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: m[1] ?? (m[2] === "" || m[2] === undefined ? "0.0.0.0" : m[2]), port };
}

/** host:port as parseListenAddress reads it back ("[::1]:9740" for IPv6). */
export function formatListen(listen: ListenAddress): string {
  return `${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${listen.port}`;
}

export function readListen(r: TableReader, name: string, fallback: string): ListenAddress {
  const value = r.string(name);
  const parsed = parseListenAddress(value ?? fallback);
  if (parsed !== null) return parsed;
  r.error(name, `must be host:port, e.g. "${fallback}", got ${JSON.stringify(value)}`);
  return parseListenAddress(fallback)!;
}

/** A peer to dial: host:port with a real port, no scheme. */
export function readHostPort(r: TableReader, name: string, example: string): string | undefined {
  const value = r.string(name, { required: true, nonEmpty: true });
  if (value === undefined) return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    r.error(name, `must be host:port without a scheme, e.g. "${example}", got ${JSON.stringify(value)}`);
    return undefined;
  }
  const parsed = parseListenAddress(value);
  if (parsed === null || parsed.port === 0 || value.startsWith(":")) {
    r.error(name, `must be host:port, e.g. "${example}", got ${JSON.stringify(value)}`);
    return undefined;
  }
  return value;
}

export function readName(
  r: TableReader,
  name: string,
  opts: { required?: boolean } = {},
): string | undefined {
  const value = r.string(name, opts);
  if (value === undefined) return undefined;
  if (!isValidName(value)) {
    r.error(name, `${NAME_RULE}, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return value;
}

/**
 * A file the role will open (certificate, key, CA). Relative paths resolve
 * against the config file's folder, so a config and its certs/ move together.
 * Returns the absolute path; a missing file is reported now, not at connect time.
 */
export function readExistingFile(
  r: TableReader,
  name: string,
  configDir: string,
  opts: { required?: boolean } = {},
): string | undefined {
  const value = r.string(name, { ...opts, nonEmpty: true });
  if (value === undefined) return undefined;
  const shown = isAbsolute(value) ? value : join(configDir, value);
  try {
    if (!statSync(shown).isFile()) {
      r.error(name, `not a file: ${shown}`);
      return undefined;
    }
  } catch {
    r.error(name, `no such file: ${shown}`);
    return undefined;
  }
  return resolve(shown);
}

/** A path the role will create (buffer database); resolved like readExistingFile, not checked. */
export function resolvePath(configDir: string, value: string): string {
  return isAbsolute(value) ? value : resolve(configDir, value);
}

/** True for control characters: they would end a command line sent to smbclient. */
export function hasControlChars(value: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(value);
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** 127.0.0.0/8, ::1 (however spelt) or "localhost"; not a host name that merely starts with "127.". */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? "ipv4" : "ipv6");
}
