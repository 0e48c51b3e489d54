// One [[notifications]] block: smbprobe's format (target, url,
// integration_key, headers, severity, source_email, summary) plus SMTP email
// and routing filters (sites, kinds).
import {
  INCIDENT_KINDS,
  NOTIFICATION_TARGETS,
  NOTIFIER_DEFAULTS,
  PAGER_DUTY_SEVERITIES,
} from "./defaults.ts";
import { joinKey } from "./key-path.ts";
import type { TableReader } from "./reader.ts";
import type { SecretResolver } from "./secrets.ts";
import { urlProblem } from "./service-url.ts";
import type { NotificationDestination, NotificationTarget } from "./types.ts";
import { isValidName } from "./values.ts";

const HTTP_ONLY = ["url", "integration_key", "headers", "severity", "source_email"] as const;
const EMAIL_ONLY = [
  "smtp_host",
  "smtp_port",
  "from",
  "to",
  "smtp_username",
  "smtp_password",
  "smtp_tls",
] as const;
/** RFC 9110 token: what a header name may be. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Reads one destination; undefined when it has errors (all of them reported). */
export function readNotification(
  r: TableReader,
  secrets: SecretResolver,
): NotificationDestination | undefined {
  const before = r.sink.errorCount;
  const target = readTarget(r);
  const isEmail = target === "email";
  const isHttp = target !== undefined && !isEmail;

  const urlValue = r.string("url", { required: isHttp, nonEmpty: true });
  const url = urlValue !== undefined && checkUrl(r, urlValue) ? urlValue : null;
  const keyRaw = r.string("integration_key", {
    required: target === "pager-duty",
    nonEmpty: true,
    secret: true,
  });
  const integrationKey =
    keyRaw === undefined ? null : (secrets.resolve(r.key("integration_key"), keyRaw) ?? null);
  const headers = readHeaders(r);
  const severity =
    r.string("severity", target === "pager-duty" ? { oneOf: PAGER_DUTY_SEVERITIES } : {}) ?? null;
  const sourceEmail = r.string("source_email") ?? null;
  const summary = r.string("summary") ?? null;

  const host = r.string("smtp_host", { required: isEmail, nonEmpty: true });
  const port = r.integer("smtp_port", { min: 1, max: 65535 }) ?? NOTIFIER_DEFAULTS.smtpPort;
  const from = readAddress(r, "from", isEmail);
  const to = r.stringArray("to", {
    required: isEmail,
    nonEmpty: true,
    each: (addr) => (addr.includes("@") ? null : `not an email address: ${JSON.stringify(addr)}`),
  });
  const smtpUsername = r.string("smtp_username") ?? null;
  const passwordRaw = r.string("smtp_password", { secret: true });
  const smtpPassword =
    passwordRaw === undefined ? null : (secrets.resolve(r.key("smtp_password"), passwordRaw) ?? null);
  const smtpTls = r.boolean("smtp_tls") ?? NOTIFIER_DEFAULTS.smtpTls;

  const sites =
    r.stringArray("sites", {
      each: (site) => (isValidName(site) ? null : `not a valid site name: ${JSON.stringify(site)}`),
    }) ?? [];
  const known = INCIDENT_KINDS as readonly string[];
  const kinds =
    r.stringArray("kinds", {
      each: (kind) =>
        known.includes(kind)
          ? null
          : `unknown incident kind ${JSON.stringify(kind)}; expected one of ${known.join(", ")}`,
    }) ?? [];
  if (target !== undefined) warnUnused(r, target);
  r.finish();

  if (r.sink.errorCount > before || target === undefined) return undefined;
  return {
    target,
    url,
    integrationKey,
    headers: Object.fromEntries(headers),
    severity,
    sourceEmail,
    summary,
    smtp:
      isEmail && host !== undefined && from !== undefined && to !== undefined
        ? { host, port, from, to, username: smtpUsername, password: smtpPassword, tls: smtpTls }
        : null,
    sites,
    kinds,
    line: r.sink.lineOf(r.path),
  };
}

function readTarget(r: TableReader): NotificationTarget | undefined {
  const value = r.string("target", { required: true });
  if (value === undefined) return undefined;
  if (value === "request-bin") {
    r.error(
      "target",
      '"request-bin" posts every alert to a third-party public service; use target = "generic-post" with a url of your own',
    );
    return undefined;
  }
  if (!(NOTIFICATION_TARGETS as readonly string[]).includes(value)) {
    r.error(
      "target",
      `must be one of ${NOTIFICATION_TARGETS.map((t) => JSON.stringify(t)).join(", ")}, got ${JSON.stringify(value)}`,
    );
    return undefined;
  }
  return value as NotificationTarget;
}

function checkUrl(r: TableReader, value: string): boolean {
  const problem = urlProblem(value, ["https", "http"]);
  if (problem === null) return true;
  r.error("url", problem);
  return false;
}

function readHeaders(r: TableReader): Array<[string, string]> {
  const entries = r.stringMap("headers") ?? [];
  return entries.filter(([name, value]) => {
    const key = joinKey(r.key("headers"), name);
    if (!HEADER_NAME.test(name)) r.sink.error(key, "not a valid HTTP header name");
    else if (/[\r\n\0]/.test(value)) r.sink.error(key, "header values must not contain line breaks");
    else return true;
    return false;
  });
}

function readAddress(r: TableReader, name: string, required: boolean): string | undefined {
  const value = r.string(name, { required, nonEmpty: true });
  if (value === undefined || value.includes("@")) return value;
  r.error(name, `not an email address: ${JSON.stringify(value)}`);
  return undefined;
}

/** A key of the other transport is almost certainly a mistake in target; say so, but deliver. */
function warnUnused(r: TableReader, target: NotificationTarget): void {
  const unused: readonly string[] = target === "email" ? HTTP_ONLY : EMAIL_ONLY;
  for (const name of unused) {
    if (r.has(name)) r.warn(name, `not used by target "${target}"`);
  }
}
