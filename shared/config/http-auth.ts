// [http_auth]: the credentials a role's HTTP endpoints (/metrics, /readyz,
// and /status, /api later) ask for. Any role's config may have the table;
// shared/http/auth.ts checks requests against what this returns.
//
//   [http_auth]
//   bearer_token = "…"        # or SMBFLEET_HTTP_TOKEN
//   basic_user = "prometheus"
//   basic_password = "…"      # or SMBFLEET_HTTP_PASSWORD
//
// The environment overrides the file and, alone, turns auth on, so the
// secrets can stay out of config files (a secret in the file is warned about).
import { Secret } from "../secret.ts";
import { HTTP_PASSWORD_ENV, HTTP_TOKEN_ENV, HTTP_TOKEN_MIN_LENGTH } from "./defaults.ts";
import type { TableReader } from "./reader.ts";
import type { HttpAuth } from "./types.ts";
import { hasControlChars } from "./values.ts";

/** A secret from the environment (non-empty) or else the file; `inFile` says which, for the warning. */
function secret(
  r: TableReader | undefined,
  name: string,
  env: NodeJS.ProcessEnv,
  envName: string,
): { value: Secret; inFile: boolean } | undefined {
  const fromEnv = env[envName];
  const fromFile = r?.string(name, { nonEmpty: true, secret: true });
  if (fromEnv !== undefined && fromEnv !== "") return { value: new Secret(fromEnv), inFile: false };
  return fromFile === undefined ? undefined : { value: new Secret(fromFile), inFile: true };
}

/** The [http_auth] table of `root` (and its environment overrides); null when no auth is configured. */
export function readHttpAuth(root: TableReader, env: NodeJS.ProcessEnv): HttpAuth | null {
  const r = root.table("http_auth");
  const at = (name: string) => `http_auth.${name}`;
  const error = (name: string, message: string) => root.sink.error(at(name), message);

  const inFile = (name: string, envName: string) =>
    root.sink.warn(at(name), `holds a secret: prefer ${envName} to keep it out of the file`);

  const token = secret(r, "bearer_token", env, HTTP_TOKEN_ENV);
  let bearerToken: Secret | null = null;
  if (token !== undefined) {
    const text = token.value.reveal();
    // RFC 6750 b64token: visible ASCII, no spaces, or clients cannot send it.
    if (!/^[\x21-\x7e]+$/.test(text)) {
      error("bearer_token", "must be printable ASCII without spaces");
    } else {
      bearerToken = token.value;
      if (token.inFile) inFile("bearer_token", HTTP_TOKEN_ENV);
      if (text.length < HTTP_TOKEN_MIN_LENGTH) {
        root.sink.warn(
          at("bearer_token"),
          `is shorter than ${HTTP_TOKEN_MIN_LENGTH} characters: easy to guess`,
        );
      }
    }
  }

  const user = r?.string("basic_user", { nonEmpty: true });
  const password = secret(r, "basic_password", env, HTTP_PASSWORD_ENV);
  if (password?.inFile === true) inFile("basic_password", HTTP_PASSWORD_ENV);
  let basic: HttpAuth["basic"] = null;
  if (user !== undefined) {
    // RFC 7617: the user-id cannot contain a colon; control characters would break the header.
    if (user.includes(":") || hasControlChars(user)) {
      error("basic_user", "must not contain ':' or control characters");
    } else if (password === undefined) {
      error("basic_password", `required with basic_user (or set ${HTTP_PASSWORD_ENV})`);
    } else {
      basic = { user, password: password.value };
    }
  } else if (password?.inFile === true) {
    error("basic_password", "needs basic_user");
  }
  r?.finish();
  return bearerToken === null && basic === null ? null : { bearerToken, basic };
}
