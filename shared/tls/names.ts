// Site and agent names, and the URI that binds them into an agent
// certificate. The URI SAN `urn:smbfleet:site:<site>:agent:<agent>` is the
// authoritative identity: the aggregator reads it, never the subject (the
// subject's CN=<agent>, OU=<site> is there for people reading the
// certificate). Names cannot contain ':', so the URI splits one way only.
import { isIP } from "node:net";

/** The shape of a site or agent name: safe in a URI, a file name, a metric label and a SQL text column. */
export const FLEET_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const NAME_RULE =
  "must be 1-63 characters of lowercase letters, digits, '-', '_' and '.', starting with a letter or digit";

/**
 * Why `name` is not a valid site or agent name, or null when it is. The first
 * character may not be '.', '-' or '_': an agent named ".x" would write hidden
 * files (agents/.x.pem), and "-x" reads like a command-line option.
 */
export function fleetNameProblem(kind: "site" | "agent", name: string): string | null {
  if (FLEET_NAME_PATTERN.test(name)) return null;
  return `${kind} name ${JSON.stringify(name)} is invalid: it ${NAME_RULE}`;
}

export interface FleetIdentity {
  site: string;
  agent: string;
}

const URI_PREFIX = "urn:smbfleet:";

export function identityUri(identity: FleetIdentity): string {
  return `${URI_PREFIX}site:${identity.site}:agent:${identity.agent}`;
}

/** True for any URI in the smbfleet namespace, well-formed or not. */
export function isFleetUri(uri: string): boolean {
  return uri.toLowerCase().startsWith(URI_PREFIX);
}

/** The identity a fleet URI names, or null unless it is exactly `urn:smbfleet:site:S:agent:A` with valid names. */
export function parseIdentityUri(uri: string): FleetIdentity | null {
  const match = /^urn:smbfleet:site:([^:]+):agent:([^:]+)$/.exec(uri);
  if (match === null) return null;
  const [, site = "", agent = ""] = match;
  if (fleetNameProblem("site", site) !== null || fleetNameProblem("agent", agent) !== null) return null;
  return { site, agent };
}

/**
 * Why `name` cannot be a DNS SAN, or null. Letters, digits and '-' per label
 * (RFC 1123), '.' between labels, an optional leading "*." wildcard label.
 */
export function dnsNameProblem(name: string): string | null {
  const body = name.startsWith("*.") ? name.slice(2) : name;
  const label = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  if (name.length <= 253 && body.split(".").every((part) => label.test(part))) return null;
  return `DNS name ${JSON.stringify(name)} is invalid: labels of letters, digits and '-', separated by '.'`;
}

/** Why `address` cannot be an IP SAN, or null. Zone ids ("fe80::1%eth0") have no place in a certificate. */
export function ipAddressProblem(address: string): string | null {
  if (isIP(address) !== 0 && !address.includes("%")) return null;
  return `IP address ${JSON.stringify(address)} is invalid`;
}
