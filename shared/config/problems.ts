// Every problem a config file has, found in one run and reported together,
// each naming file, line and key (blackbox_exporter's --config.check habit).
import { SmbfleetError, type ErrorCode } from "../errors.ts";
import type { ConfigProblem } from "./types.ts";
import type { LineIndex } from "./line-index.ts";

export type { ConfigProblem };

/** `<file>:<line>: <key>: <message>`; warnings say so at the start of the message. */
export function formatProblem(p: ConfigProblem): string {
  const message = p.severity === "warning" ? `warning: ${p.message}` : p.message;
  return `${p.file}:${p.line}: ${p.key}: ${message}`;
}

export function countErrors(problems: readonly ConfigProblem[]): number {
  return problems.filter((p) => p.severity === "error").length;
}

/**
 * A config file that cannot be used. `problems` holds every error and warning
 * found; the message lists them, one per line, so a log line or a crash
 * report alone tells the operator everything to fix.
 */
export class ConfigError extends SmbfleetError {
  readonly problems: ConfigProblem[];

  constructor(file: string, problems: ConfigProblem[], code: ErrorCode = "CONFIG_INVALID") {
    const errors = countErrors(problems);
    const header = `${file}: ${errors} ${errors === 1 ? "error" : "errors"} in config`;
    super(code, [header, ...problems.map((p) => `  ${formatProblem(p)}`)].join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * Collects problems for one config file. The line comes from the file's
 * line index by key path (falling back to the enclosing table), unless given.
 */
export class ProblemSink {
  readonly file: string;
  #index: LineIndex;
  readonly #problems: ConfigProblem[] = [];

  constructor(file: string, index: LineIndex) {
    this.file = file;
    this.#index = index;
  }

  error(key: string, message: string, options: { line?: number; file?: string } = {}): void {
    this.add("error", key, message, options);
  }

  warn(key: string, message: string, options: { line?: number; file?: string } = {}): void {
    this.add("warning", key, message, options);
  }

  /** The index of the file once it has been parsed (problems before that are on line 0 or given lines). */
  useIndex(index: LineIndex): void {
    this.#index = index;
  }

  lineOf(key: string): number {
    return this.#index.lineOf(key);
  }

  add(
    severity: ConfigProblem["severity"],
    key: string,
    message: string,
    options: { line?: number; file?: string } = {},
  ): void {
    this.#problems.push({
      file: options.file ?? this.file,
      line: options.line ?? this.#index.lineOf(key),
      key,
      message,
      severity,
    });
  }

  /** Problems of this file first, in line order; then those of other files (secrets). */
  get problems(): ConfigProblem[] {
    const rank = (p: ConfigProblem): number => (p.file === this.file ? 0 : 1);
    return [...this.#problems].sort(
      (a, b) => rank(a) - rank(b) || a.file.localeCompare(b.file) || a.line - b.line,
    );
  }

  get errorCount(): number {
    return countErrors(this.#problems);
  }

  get warnings(): ConfigProblem[] {
    return this.problems.filter((p) => p.severity === "warning");
  }
}
