// notifier.toml: its HTTP listener, the Redis stream it reads, and the
// [[notifications]] destinations in smbprobe's format.
import { resolve } from "node:path";
import { NOTIFIER_DEFAULTS, REDIS_URL_ENV } from "./defaults.ts";
import { buildFrom, configOrThrow, loadWith, type BuildContext, type LoadResult } from "./load.ts";
import { readNotification } from "./notifications.ts";
import type { ProblemSink } from "./problems.ts";
import { TableReader } from "./reader.ts";
import { SecretResolver } from "./secrets.ts";
import { readServiceUrl } from "./service-url.ts";
import type { TomlSource } from "./toml-source.ts";
import type { NotificationDestination, NotifierConfig } from "./types.ts";
import { readListen } from "./values.ts";
import { Secret } from "../secret.ts";

/** Loads and validates notifier.toml; throws ConfigError listing every problem. */
export function loadNotifierConfig(file: string, env: NodeJS.ProcessEnv): NotifierConfig {
  return configOrThrow(file, readNotifierConfig(file, env));
}

export function readNotifierConfig(file: string, env: NodeJS.ProcessEnv): LoadResult<NotifierConfig> {
  return loadWith(file, env, buildNotifierConfig);
}

export function notifierConfigFrom(
  source: TomlSource,
  env: NodeJS.ProcessEnv,
  sink: ProblemSink,
): LoadResult<NotifierConfig> {
  return buildFrom(source, env, sink, buildNotifierConfig);
}

function buildNotifierConfig(source: TomlSource, ctx: BuildContext): NotifierConfig {
  const root = new TableReader(ctx.sink, "", source.table);
  const httpListen = readListen(root, "http_listen", NOTIFIER_DEFAULTS.httpListen);
  const redis = root.table("redis") ?? new TableReader(ctx.sink, "redis", {});
  const url = readServiceUrl(redis, "url", ctx.env, REDIS_URL_ENV, ["redis", "rediss"], true);
  redis.finish();

  const secrets = new SecretResolver(ctx.file, ctx.env, ctx.sink);
  const notifications: NotificationDestination[] = [];
  for (const block of root.tables("notifications") ?? []) {
    const destination = readNotification(block, secrets);
    if (destination !== undefined) notifications.push(destination);
  }
  if (!root.has("notifications")) {
    ctx.sink.warn("notifications", "nothing to deliver to: add a [[notifications]] block");
  }
  root.finish();
  return {
    file: resolve(ctx.file),
    httpListen,
    redis: { url: url ?? new Secret("") },
    notifications,
    warnings: [],
  };
}
