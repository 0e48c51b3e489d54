// Checks a request's Authorization header against a role's [http_auth]
// (shared/config/http-auth.ts). Secrets are compared as SHA-256 digests with
// timingSafeEqual: equal lengths whatever was sent, and no early exit that a
// remote clock could measure.
import { createHash, timingSafeEqual } from "node:crypto";
import type { HttpAuth } from "../config/types.ts";

/** The realm in the challenge: what a browser shows, what a scraper ignores. */
const REALM = "smbfleet";

/** Paths answered without credentials: a liveness probe from an orchestrator carries none, and says nothing. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(["/healthz"]);

function sameSecret(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}

/** True when `header` (the request's Authorization) carries a credential `auth` accepts. */
export function authorized(header: string | undefined, auth: HttpAuth): boolean {
  if (header === undefined) return false;
  const space = header.indexOf(" ");
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const credential = header.slice(space + 1).trim();
  if (scheme === "bearer" && auth.bearerToken !== null) {
    return sameSecret(credential, auth.bearerToken.reveal());
  }
  if (scheme === "basic" && auth.basic !== null) {
    const decoded = Buffer.from(credential, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    // Both compared, always: which one was wrong is not for the client to time.
    const user = sameSecret(decoded.slice(0, colon), auth.basic.user);
    const password = sameSecret(decoded.slice(colon + 1), auth.basic.password.reveal());
    return user && password;
  }
  return false;
}

/** The WWW-Authenticate challenges of a 401 (RFC 9110 §11.6.1): one per scheme `auth` accepts. */
export function challenges(auth: HttpAuth): string[] {
  const list: string[] = [];
  if (auth.bearerToken !== null) list.push(`Bearer realm="${REALM}"`);
  if (auth.basic !== null) list.push(`Basic realm="${REALM}", charset="UTF-8"`);
  return list;
}
