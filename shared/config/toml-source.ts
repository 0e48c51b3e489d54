// Reading and parsing one TOML file. Syntax errors become a problem on the
// line smol-toml names; unreadable files become a problem on line 0.
import { readFileSync, statSync } from "node:fs";
import { parse, TomlDate, TomlError, type TomlTable, type TomlValue } from "smol-toml";
import { errorMessage } from "../errors.ts";
import { CONFIG_LIMITS } from "./defaults.ts";
import { indexLines, type LineIndex } from "./line-index.ts";
import type { ProblemSink } from "./problems.ts";

export type { TomlTable, TomlValue };

export interface TomlSource {
  /** The path as the caller passed it; used in every message. */
  file: string;
  table: TomlTable;
  index: LineIndex;
}

/** Key for problems that concern a whole file rather than one key. */
export const FILE_KEY = "(file)";
export const SYNTAX_KEY = "(syntax)";

/**
 * Reads and parses file. On failure returns null and records the problem in
 * sink (under `file`, which may differ from the sink's own file for a
 * secrets file). `notFound` tells a missing file apart from a broken one.
 */
export function readToml(file: string, sink: ProblemSink): { source: TomlSource | null; notFound: boolean } {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > CONFIG_LIMITS.maxFileBytes) {
      sink.error(
        FILE_KEY,
        `${size} bytes is larger than any config file (limit ${CONFIG_LIMITS.maxFileBytes})`,
        {
          line: 0,
          file,
        },
      );
      return { source: null, notFound: false };
    }
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    sink.error(FILE_KEY, `cannot read: ${describeReadError(err)}`, { line: 0, file });
    return { source: null, notFound: code === "ENOENT" };
  }
  return { source: parseToml(file, text, sink), notFound: false };
}

/** Parses text; integers come back as bigint so that 5 and 5.0 stay distinguishable. */
export function parseToml(file: string, text: string, sink: ProblemSink): TomlSource | null {
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  try {
    const table = parse(body, { integersAsBigInt: true });
    return { file, table, index: indexLines(body) };
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split("\n")[0] ?? err.message;
      const reason = first.replace(/^Invalid TOML document: /, "");
      sink.error(SYNTAX_KEY, `invalid TOML: ${reason} (column ${err.column})`, { line: err.line, file });
    } else {
      sink.error(SYNTAX_KEY, `invalid TOML: ${errorMessage(err)}`, { line: 0, file });
    }
    return null;
  }
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "is a directory",
};

function describeReadError(err: unknown): string {
  return READ_ERRORS[(err as NodeJS.ErrnoException).code ?? ""] ?? errorMessage(err);
}

/** The TOML type of a value, as messages name it. */
export function tomlTypeName(value: TomlValue): string {
  if (typeof value === "string") return "a string";
  if (typeof value === "bigint") return "an integer";
  if (typeof value === "number") return "a float";
  if (typeof value === "boolean") return "a boolean";
  if (value instanceof TomlDate) return "a date-time";
  if (Array.isArray(value)) return "an array";
  return "a table";
}

export function isTable(value: TomlValue | undefined): value is TomlTable {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof TomlDate);
}
