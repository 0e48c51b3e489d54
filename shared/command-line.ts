// The command line of every smbfleet command: options parsed strictly,
// --help prints usage (exit 0), a bad command line prints the problem and
// usage (exit 2).
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import type { CommandIo } from "./command-io.ts";
import { ConfigError, formatProblem } from "./config/problems.ts";
import { errorMessage, isSmbfleetError } from "./errors.ts";

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

/** A role's command line: `--config FILE` (required) and the command's own options. */
export function parseConfigCommandLine(
  argv: readonly string[],
  options: ParseArgsOptionsConfig,
  usage: string,
  io: CommandIo,
): { ok: true; file: string; value: OptionValues } | { ok: false; exitCode: number } {
  const args = parseCommandLine(argv, { config: { type: "string", short: "c" }, ...options }, usage, io);
  if (!args.ok) return args;
  const file = args.value["config"];
  if (typeof file !== "string") {
    io.stderr(`--config is required\n\n${usage}`);
    return { ok: false, exitCode: 2 };
  }
  return { ok: true, file, value: args.value };
}

/**
 * Runs a config loader; when the config is bad, prints each problem on its
 * own line (file:line: key: message) to stderr and returns null. Warnings
 * are the caller's to log.
 */
export function loadConfigOrReport<T>(load: () => T, io: CommandIo): T | null {
  try {
    return load();
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
