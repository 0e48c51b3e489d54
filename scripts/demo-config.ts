// Writes an agent.toml + .secrets.toml for a harness Samba in smbprobe's own
// format (`@format {this.secrets.users.NAME}` passwords, secrets in a 0600
// file beside the config), so the demo, the end-to-end tests and the
// benchmarks all exercise the path an smbprobe operator takes. With
// `aggregator` it adds the [aggregator] section a fleet site adds to it.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  DATABASE_URL_ENV,
  PASSWORD_FALLBACK_ENV,
  REDIS_URL_ENV,
  SECRETS_FILE_ENV,
} from "../shared/config/defaults.ts";
import type { SambaServer } from "../test/harness/samba.ts";

/** Short, so the first results arrive within seconds; a real site would use 60. */
export const DEMO_INTERVAL_SECONDS = 5;
/** The first run of each target lands within one interval, then one send to HQ; this allows a slow, busy machine. */
export const FIRST_RESULTS_TIMEOUT_MS = 60_000;

export interface DemoTarget {
  name: string;
  share: string;
  /** Seconds between runs (fixed rate). */
  interval: number;
  /** Index into samba.users; 0 is the user whose password has spaces and %. */
  user?: number;
  /** Overrides the user's password (e.g. a wrong one). */
  password?: string;
  port?: number;
  address?: string;
  /** remote_basedir inside the share ("." by default); it must exist. */
  basedir?: string;
  /** Whole-run timeout, seconds (the loader's default is the interval). */
  timeout?: number;
}

export interface DemoConfigOptions {
  targets: DemoTarget[];
  /** host:port for /metrics; port 0 picks a free one (read it from the "agent started" log line). */
  httpListen?: string;
  site?: string;
  agentId?: string;
  maxConcurrentRuns?: number;
  /** Extra lines appended to [agent]. */
  agentLines?: string[];
  /** Ship to this aggregator over mTLS (an [aggregator] section); absent = standalone. */
  aggregator?: { url: string; ca: string; cert: string; key: string };
}

/** TOML basic strings accept JSON's escapes for everything a path or password holds here. */
const q = (s: string): string => JSON.stringify(s);

/** Writes dir/agent.toml and dir/.secrets.toml (0600); returns the agent.toml path. */
export function writeDemoConfig(
  samba: Pick<SambaServer, "host" | "port" | "users" | "workgroup">,
  dir: string,
  opts: DemoConfigOptions,
): string {
  const agent = [
    "[agent]",
    `site = ${q(opts.site ?? "demo")}`,
    `id = ${q(opts.agentId ?? "demo-agent")}`,
    `http_listen = ${q(opts.httpListen ?? "127.0.0.1:0")}`,
    `buffer_path = ${q(join(dir, "buffer.db"))}`,
    ...(opts.maxConcurrentRuns === undefined ? [] : [`max_concurrent_runs = ${opts.maxConcurrentRuns}`]),
    ...(opts.agentLines ?? []),
    ...(opts.aggregator === undefined
      ? []
      : [
          "",
          "[aggregator]",
          `url = ${q(opts.aggregator.url)}`,
          `ca = ${q(opts.aggregator.ca)}`,
          `cert = ${q(opts.aggregator.cert)}`,
          `key = ${q(opts.aggregator.key)}`,
        ]),
  ];
  const secrets = new Map<string, string>();
  const probes = opts.targets.map((t, i) => {
    const user = samba.users[t.user ?? 0]!;
    const secretName = `u${i}`;
    secrets.set(secretName, t.password ?? user.password);
    return [
      "",
      "[[probes]]",
      `name = ${q(t.name)}`,
      `address = ${q(t.address ?? samba.host)}`,
      `port = ${t.port ?? samba.port}`,
      `domain = ${q(samba.workgroup)}`,
      `share = ${q(t.share)}`,
      `username = ${q(user.name)}`,
      `password = "@format {this.secrets.users.${secretName}}"`,
      `remote_basedir = ${q(t.basedir ?? ".")}`,
      `interval = ${t.interval}`,
      ...(t.timeout === undefined ? [] : [`timeout = ${t.timeout}`]),
    ].join("\n");
  });
  const file = join(dir, "agent.toml");
  writeFileSync(file, [...agent, ...probes, ""].join("\n"));
  const secretLines = ["[secrets.users]", ...[...secrets].map(([k, v]) => `${k} = ${q(v)}`), ""];
  writeFileSync(join(dir, ".secrets.toml"), secretLines.join("\n"), { mode: 0o600 });
  return file;
}

/**
 * The environment for the smbfleet processes a demo starts: the caller's,
 * without the variables that override what the demo's config files say (a
 * database or Redis URL, another secrets file, a fallback password), so an
 * operator's shell cannot point the demo at their production database.
 */
export function demoChildEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of [DATABASE_URL_ENV, REDIS_URL_ENV, SECRETS_FILE_ENV, PASSWORD_FALLBACK_ENV])
    delete out[name];
  return out;
}
