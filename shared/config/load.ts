// The common shape of the three loaders: read, parse, build with every
// problem collected, then either a config (with its warnings) or all problems.
import { dirname } from "node:path";
import { LineIndex } from "./line-index.ts";
import { ConfigError, ProblemSink } from "./problems.ts";
import { readToml, type TomlSource } from "./toml-source.ts";
import type { ConfigProblem } from "./types.ts";

export interface LoadResult<T> {
  /** null when any error was found. */
  config: T | null;
  /** Every error and warning, this file's first, in line order. */
  problems: ConfigProblem[];
  /** The file itself does not exist (CONFIG_NOT_FOUND rather than CONFIG_INVALID). */
  notFound: boolean;
}

export interface BuildContext {
  /** The config file as the caller passed it. */
  file: string;
  /** Its folder, as the caller's path spells it (relative paths resolve against it). */
  dir: string;
  sink: ProblemSink;
  env: NodeJS.ProcessEnv;
}

/** Reads file and runs build on it; build reports into ctx.sink and may return partial results. */
export function loadWith<T extends { warnings: ConfigProblem[] }>(
  file: string,
  env: NodeJS.ProcessEnv,
  build: (source: TomlSource, ctx: BuildContext) => T,
): LoadResult<T> {
  const sink = new ProblemSink(file, new LineIndex());
  const { source, notFound } = readToml(file, sink);
  if (source === null) return { config: null, problems: sink.problems, notFound };
  return buildFrom(source, env, sink, build);
}

/** build on an already parsed source (check-config parses once to detect the kind). */
export function buildFrom<T extends { warnings: ConfigProblem[] }>(
  source: TomlSource,
  env: NodeJS.ProcessEnv,
  sink: ProblemSink,
  build: (source: TomlSource, ctx: BuildContext) => T,
): LoadResult<T> {
  sink.useIndex(source.index);
  const config = build(source, { file: source.file, dir: dirname(source.file), sink, env });
  if (sink.errorCount > 0) return { config: null, problems: sink.problems, notFound: false };
  config.warnings = sink.warnings;
  return { config, problems: sink.problems, notFound: false };
}

/** The config, or a ConfigError carrying every problem. */
export function configOrThrow<T>(file: string, result: LoadResult<T>): T {
  if (result.config !== null) return result.config;
  throw new ConfigError(file, result.problems, result.notFound ? "CONFIG_NOT_FOUND" : "CONFIG_INVALID");
}
