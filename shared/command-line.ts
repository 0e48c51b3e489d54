// The command line of every smbfleet command: options parsed strictly,
// --help prints usage (exit 0), a bad command line prints the problem and
// usage (exit 2).
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import type { CommandIo } from "./command-io.ts";
import { errorMessage } from "./errors.ts";

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
