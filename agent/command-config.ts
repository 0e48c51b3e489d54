// What `agent` and `probe` share before they start: the command line and
// the config file, with every config problem printed one per line.
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { loadAgentConfig } from "../shared/config/agent.ts";
import { ConfigError, formatProblem } from "../shared/config/problems.ts";
import type { AgentConfig } from "../shared/config/types.ts";
import { errorMessage, isSmbfleetError } from "../shared/errors.ts";
import type { CommandIo } from "../cli/types.ts";

export type Parsed<T> = { ok: true; value: T } | { ok: false; exitCode: number };
export type OptionValues = Record<string, string | boolean | undefined>;

/** Parses options strictly; prints usage for --help (exit 0) or a bad command line (exit 2). */
export function parseCommandLine(
  argv: readonly string[],
  options: ParseArgsOptionsConfig,
  usage: string,
  io: CommandIo,
): Parsed<OptionValues> {
  let values: OptionValues;
  try {
    const parsed = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.positionals.length > 0) throw new Error(`unexpected argument '${parsed.positionals[0]}'`);
    values = parsed.values;
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n\n${usage}`);
    return { ok: false, exitCode: 2 };
  }
  if (values["help"] === true) {
    io.stdout(usage);
    return { ok: false, exitCode: 0 };
  }
  return { ok: true, value: values };
}

/**
 * Loads the agent config; on any error prints each problem on its own line
 * (file:line: key: message) to stderr and returns null. Warnings are the
 * caller's to log.
 */
export function loadConfigOrReport(file: string, env: NodeJS.ProcessEnv, io: CommandIo): AgentConfig | null {
  try {
    return loadAgentConfig(file, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) io.stderr(`${formatProblem(p)}\n`);
      if (err.problems.length === 0) io.stderr(`${err.message}\n`);
      return null;
    }
    if (isSmbfleetError(err)) {
      io.stderr(`${err.message}\n`);
      return null;
    }
    throw err;
  }
}
