// check-config's engine, reusable by every role: tell which of the three
// config files this is, load it, and return every problem found.
import { LineIndex } from "./line-index.ts";
import { agentConfigFrom } from "./agent.ts";
import { aggregatorConfigFrom } from "./aggregator.ts";
import { notifierConfigFrom } from "./notifier.ts";
import { ProblemSink } from "./problems.ts";
import { FILE_KEY, readToml, type TomlTable } from "./toml-source.ts";
import type { AgentConfig, AggregatorConfig, ConfigProblem, NotifierConfig } from "./types.ts";

export type ConfigKind = "agent" | "aggregator" | "notifier";

export type CheckedConfig =
  | { kind: "agent"; config: AgentConfig | null; problems: ConfigProblem[] }
  | { kind: "aggregator"; config: AggregatorConfig | null; problems: ConfigProblem[] }
  | { kind: "notifier"; config: NotifierConfig | null; problems: ConfigProblem[] }
  | { kind: null; config: null; problems: ConfigProblem[] };

const AGENT_KEYS = ["probes", "agent", "aggregator"];
const AGGREGATOR_KEYS = ["server", "database", "tls", "ingest", "retention", "agents", "incidents"];
const NOTIFIER_KEYS = ["notifications", "redis", "http_listen"];

/**
 * Which config a parsed file is. An agent config may carry smbprobe's
 * [[notifications]] (with a warning), so [[probes]] decides first.
 */
export function detectConfigKind(table: TomlTable): ConfigKind | null {
  const has = (keys: string[]): boolean => keys.some((k) => k in table);
  if (has(AGENT_KEYS)) return "agent";
  if (has(AGGREGATOR_KEYS)) return "aggregator";
  if (has(NOTIFIER_KEYS)) return "notifier";
  return null;
}

/** Loads file as whichever config it is; never throws for a bad file. */
export function checkConfigFile(file: string, env: NodeJS.ProcessEnv): CheckedConfig {
  const sink = new ProblemSink(file, new LineIndex());
  const { source } = readToml(file, sink);
  if (source === null) return { kind: null, config: null, problems: sink.problems };
  const kind = detectConfigKind(source.table);
  switch (kind) {
    case "agent":
      return { kind, ...agentConfigFrom(source, env, sink) };
    case "aggregator":
      return { kind, ...aggregatorConfigFrom(source, env, sink) };
    case "notifier":
      return { kind, ...notifierConfigFrom(source, env, sink) };
    case null:
      sink.error(
        FILE_KEY,
        "cannot tell which config this is: expected [[probes]] or [agent] (agent), " +
          "[server] or [database] (aggregator), [[notifications]] or [redis] (notifier)",
        { line: 0 },
      );
      return { kind, config: null, problems: sink.problems };
  }
}
