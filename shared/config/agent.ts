// agent.toml: smbprobe's probe.toml (loaded unchanged) plus [agent] and
// [aggregator]. Every problem is collected; any error refuses the whole file.
import { resolve } from "node:path";
import { AGENT_DEFAULTS } from "./defaults.ts";
import { buildFrom, configOrThrow, loadWith, type BuildContext, type LoadResult } from "./load.ts";
import { checkDuplicateTargets, readProbe } from "./probes.ts";
import type { ProblemSink } from "./problems.ts";
import { TableReader } from "./reader.ts";
import { SecretResolver } from "./secrets.ts";
import { readHttpAuth } from "./http-auth.ts";
import type { TomlSource } from "./toml-source.ts";
import type { AgentConfig, AgentSection, AggregatorSection, ProbeTarget } from "./types.ts";
import {
  isLoopbackHost,
  parseListenAddress,
  readExistingFile,
  readHostPort,
  readListen,
  readName,
  resolvePath,
} from "./values.ts";

/**
 * Loads and validates an agent config. Throws ConfigError (code
 * CONFIG_INVALID, or CONFIG_NOT_FOUND when the file does not exist) listing
 * every problem; warnings of a usable config are in `config.warnings`.
 */
export function loadAgentConfig(file: string, env: NodeJS.ProcessEnv): AgentConfig {
  return configOrThrow(file, readAgentConfig(file, env));
}

/** Like loadAgentConfig, but returns the problems instead of throwing. */
export function readAgentConfig(file: string, env: NodeJS.ProcessEnv): LoadResult<AgentConfig> {
  return loadWith(file, env, buildAgentConfig);
}

export function agentConfigFrom(
  source: TomlSource,
  env: NodeJS.ProcessEnv,
  sink: ProblemSink,
): LoadResult<AgentConfig> {
  return buildFrom(source, env, sink, buildAgentConfig);
}

function buildAgentConfig(source: TomlSource, ctx: BuildContext): AgentConfig {
  const root = new TableReader(ctx.sink, "", source.table);
  const agentTable = root.table("agent");
  const agent = readAgentSection(agentTable, ctx);
  const aggregatorTable = root.table("aggregator");
  const aggregator = aggregatorTable === undefined ? null : readAggregatorSection(aggregatorTable, ctx);
  if (aggregatorTable !== undefined && agent.site === null && agentTable?.has("site") !== true) {
    // The aggregator takes the site from the certificate and refuses a Hello that claims another.
    ctx.sink.error(
      "agent.site",
      "required when [aggregator] is set (it must match the agent's certificate)",
      {
        line: ctx.sink.lineOf(agentTable === undefined ? "aggregator" : "agent"),
      },
    );
  }

  const probes: ProbeTarget[] = [];
  const secrets = new SecretResolver(ctx.file, ctx.env, ctx.sink);
  const blocks = root.tables("probes");
  const rawProbes = root.values["probes"];
  if (rawProbes === undefined || (Array.isArray(rawProbes) && rawProbes.length === 0)) {
    ctx.sink.error("probes", "nothing to probe: add at least one [[probes]] block");
  }
  for (const reader of blocks ?? []) {
    const target = readProbe(reader, { secrets, env: ctx.env });
    if (target !== undefined) probes.push(target);
  }
  checkDuplicateTargets(blocks ?? []);

  if (root.raw("notifications") !== undefined) {
    // smbprobe keeps notifications in probe.toml; smbfleet's notifier delivers them.
    // Their content is not checked here: notifier.toml is where they are validated.
    ctx.sink.warn(
      "notifications",
      "[[notifications]] belong in the notifier's config (notifier.toml) and are ignored here",
    );
  }
  const httpAuth = readHttpAuth(root, ctx.env);
  root.finish();
  return { file: resolve(ctx.file), agent, aggregator, probes, httpAuth, warnings: [] };
}

function readAgentSection(r: TableReader | undefined, ctx: BuildContext): AgentSection {
  const section: AgentSection = {
    site: null,
    id: null,
    bufferPath: AGENT_DEFAULTS.bufferPath,
    httpListen: parseListenAddress(AGENT_DEFAULTS.httpListen)!,
    maxConcurrentRuns: AGENT_DEFAULTS.maxConcurrentRuns,
    maxSpawnsPerSecond: AGENT_DEFAULTS.maxSpawnsPerSecond,
    buffer: { maxBytes: AGENT_DEFAULTS.bufferMaxBytes, maxAgeSeconds: AGENT_DEFAULTS.bufferMaxAgeSeconds },
  };
  if (r === undefined) return section;
  section.site = readName(r, "site") ?? null;
  section.id = readName(r, "id") ?? null;
  const bufferPath = r.string("buffer_path", { nonEmpty: true });
  if (bufferPath !== undefined) section.bufferPath = resolvePath(ctx.dir, bufferPath);
  section.httpListen = readListen(r, "http_listen", AGENT_DEFAULTS.httpListen);
  section.maxConcurrentRuns =
    r.integer("max_concurrent_runs", { min: 1, max: AGENT_DEFAULTS.maxConcurrentRunsCeiling }) ??
    section.maxConcurrentRuns;
  section.maxSpawnsPerSecond = r.number("max_spawns_per_second", { above: 0 }) ?? section.maxSpawnsPerSecond;
  section.buffer.maxBytes =
    r.integer("buffer_max_bytes", { min: AGENT_DEFAULTS.bufferMinBytes }) ?? section.buffer.maxBytes;
  section.buffer.maxAgeSeconds = r.integer("buffer_max_age", { min: 1 }) ?? section.buffer.maxAgeSeconds;
  r.finish();
  return section;
}

function readAggregatorSection(r: TableReader, ctx: BuildContext): AggregatorSection {
  const url = readHostPort(r, "url", "hq.example.com:9740");
  const insecure = r.boolean("insecure") ?? false;
  const files = { ca: null as string | null, cert: null as string | null, key: null as string | null };
  for (const name of ["ca", "cert", "key"] as const) {
    files[name] = readExistingFile(r, name, ctx.dir, { required: !insecure }) ?? null;
  }
  if (insecure && url !== undefined) {
    const host = parseListenAddress(url)?.host ?? "";
    if (!isLoopbackHost(host)) {
      r.warn(
        "insecure",
        `results and identities cross the network in plain text to ${url}; use it only on loopback`,
      );
    }
  }
  r.finish();
  return { url: url ?? "", insecure, ...files };
}
