// Connection URLs (PostgreSQL, Redis): an environment variable overrides the
// file, so passwords can stay out of config files. URLs are Secrets and are
// never echoed in messages: they often carry a password.
import { Secret } from "../secret.ts";
import type { TableReader } from "./reader.ts";

export function readServiceUrl(
  r: TableReader,
  name: string,
  env: NodeJS.ProcessEnv,
  envName: string,
  schemes: readonly string[],
  required: boolean,
): Secret | undefined {
  const fromFile = r.string(name, { nonEmpty: true, secret: true });
  const fromEnv = env[envName];
  if (fromEnv !== undefined && fromEnv !== "") {
    const problem = urlProblem(fromEnv, schemes);
    if (problem === null) return new Secret(fromEnv);
    r.sink.error(envName, `(environment) ${problem}`, { line: 0 });
    return undefined;
  }
  if (fromFile === undefined) {
    if (required && !r.has(name)) r.error(name, `required (or set ${envName})`);
    return undefined;
  }
  const problem = urlProblem(fromFile, schemes);
  if (problem !== null) {
    r.error(name, problem);
    return undefined;
  }
  if (new URL(fromFile).password !== "") {
    r.warn(name, `holds a password: prefer ${envName} to keep it out of the file`);
  }
  return new Secret(fromFile);
}

/** Why value is not a usable URL with one of schemes, or null. */
export function urlProblem(value: string, schemes: readonly string[]): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `not a valid URL (expected ${schemes.map((s) => `${s}://...`).join(" or ")})`;
  }
  const scheme = url.protocol.slice(0, -1);
  if (!schemes.includes(scheme)) return `scheme must be ${schemes.join(" or ")}, got ${scheme}`;
  if (url.hostname === "" && !url.searchParams.has("host")) return "has no host";
  return null;
}
