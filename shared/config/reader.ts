// A typed, strict view of one TOML table. Each getter reports a wrong type or
// an out-of-range value (and returns undefined, so nothing is reported twice);
// finish() reports every key no getter asked for as unknown.
import { joinKey, indexKey } from "./key-path.ts";
import { TomlDate } from "smol-toml";
import type { ProblemSink } from "./problems.ts";
import { isTable, tomlTypeName, type TomlTable, type TomlValue } from "./toml-source.ts";

interface Presence {
  /** Report "required" when absent. */
  required?: boolean;
}

interface StringOptions extends Presence {
  nonEmpty?: boolean;
  /** Never echo the value in a message. */
  secret?: boolean;
  oneOf?: readonly string[];
}

interface NumberOptions extends Presence {
  min?: number;
  max?: number;
  /** Strict lower bound (timeouts: > 0). */
  above?: number;
}

export class TableReader {
  readonly path: string;
  readonly values: TomlTable;
  readonly sink: ProblemSink;
  readonly #known = new Set<string>();

  constructor(sink: ProblemSink, path: string, table: TomlTable) {
    this.sink = sink;
    this.path = path;
    this.values = table;
  }

  key(name: string): string {
    return joinKey(this.path, name);
  }

  has(name: string): boolean {
    return this.values[name] !== undefined;
  }

  /** The value without checks; marks the key as known. */
  raw(name: string): TomlValue | undefined {
    this.#known.add(name);
    return this.values[name];
  }

  error(name: string, message: string): void {
    this.sink.error(this.key(name), message);
  }

  warn(name: string, message: string): void {
    this.sink.warn(this.key(name), message);
  }

  string(name: string, opts: StringOptions = {}): string | undefined {
    const value = this.#present(name, opts);
    if (value === undefined) return undefined;
    if (typeof value !== "string") return this.#wrongType(name, "a string", value, opts.secret);
    if (opts.nonEmpty === true && value.trim() === "") {
      this.error(name, "must not be empty");
      return undefined;
    }
    if (opts.oneOf !== undefined && !opts.oneOf.includes(value)) {
      this.error(
        name,
        `must be one of ${opts.oneOf.map((v) => JSON.stringify(v)).join(", ")}, got ${show(value)}`,
      );
      return undefined;
    }
    return value;
  }

  /** An integer (TOML integer; 5.0 is a float and refused). */
  integer(name: string, opts: NumberOptions = {}): number | undefined {
    const value = this.#present(name, opts);
    if (value === undefined) return undefined;
    if (typeof value !== "bigint") return this.#wrongType(name, "an integer", value);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      this.error(name, `${value} is out of range`);
      return undefined;
    }
    return this.#inRange(name, Number(value), opts);
  }

  /** An integer or a float (intervals and timeouts in seconds). */
  number(name: string, opts: NumberOptions = {}): number | undefined {
    const value = this.#present(name, opts);
    if (value === undefined) return undefined;
    if (typeof value !== "bigint" && typeof value !== "number")
      return this.#wrongType(name, "a number", value);
    const n = Number(value);
    if (!Number.isFinite(n)) {
      this.error(name, `must be a finite number, got ${String(value)}`);
      return undefined;
    }
    return this.#inRange(name, n, opts);
  }

  boolean(name: string, opts: Presence = {}): boolean | undefined {
    const value = this.#present(name, opts);
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") return this.#wrongType(name, "a boolean (true or false)", value);
    return value;
  }

  /**
   * An array of strings; each bad element (wrong type, or refused by `each`,
   * which returns why) is reported at its own index and left out.
   */
  stringArray(
    name: string,
    opts: Presence & { nonEmpty?: boolean; each?: (item: string) => string | null } = {},
  ): string[] | undefined {
    const value = this.#present(name, opts);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) return this.#wrongType(name, "an array of strings", value);
    if (opts.nonEmpty === true && value.length === 0) {
      this.error(name, "must not be empty");
      return undefined;
    }
    const out: string[] = [];
    value.forEach((item, i) => {
      const problem =
        typeof item === "string" ? (opts.each?.(item) ?? null) : `expected a string, got ${describe(item)}`;
      if (problem === null) out.push(item as string);
      else this.sink.error(indexKey(this.key(name), i), problem);
    });
    return out;
  }

  /** A table of string values (labels, headers); bad entries are reported at their own key. */
  stringMap(name: string, opts: Presence = {}): Array<[string, string]> | undefined {
    const sub = this.table(name, opts);
    if (sub === undefined) return undefined;
    const out: Array<[string, string]> = [];
    for (const [k, v] of Object.entries(sub.values)) {
      sub.raw(k);
      if (typeof v === "string") out.push([k, v]);
      else sub.error(k, `expected a string, got ${describe(v)}`);
    }
    return out;
  }

  /** A sub-table ([name] or name = { ... }). */
  table(name: string, opts: Presence = {}): TableReader | undefined {
    const value = this.#present(name, opts);
    if (value === undefined) return undefined;
    if (!isTable(value)) return this.#wrongType(name, "a table", value);
    return new TableReader(this.sink, this.key(name), value);
  }

  /** An array of tables ([[name]]). */
  tables(name: string, opts: Presence = {}): TableReader[] | undefined {
    const value = this.#present(name, opts);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) return this.#wrongType(name, `an array of tables ([[${name}]])`, value);
    const out: TableReader[] = [];
    value.forEach((item, i) => {
      const path = indexKey(this.key(name), i);
      if (isTable(item)) out.push(new TableReader(this.sink, path, item));
      else this.sink.error(path, `expected a table, got ${describe(item)}`);
    });
    return out;
  }

  /** Reports every key of this table that no getter asked for. */
  finish(): void {
    for (const name of Object.keys(this.values)) {
      if (this.#known.has(name)) continue;
      const hint = suggest(name, [...this.#known]);
      this.error(name, hint === null ? "unknown key" : `unknown key (did you mean "${hint}"?)`);
    }
  }

  #present(name: string, opts: Presence): TomlValue | undefined {
    const value = this.raw(name);
    if (value === undefined && opts.required === true) this.error(name, "required");
    return value;
  }

  #wrongType(name: string, expected: string, value: TomlValue, secret = false): undefined {
    this.error(name, `expected ${expected}, got ${secret ? tomlTypeName(value) : describe(value)}`);
    return undefined;
  }

  #inRange(name: string, n: number, opts: NumberOptions): number | undefined {
    const { min, max, above } = opts;
    let bad = false;
    if (above !== undefined && n <= above) {
      this.error(name, `must be greater than ${above}, got ${n}`);
      return undefined;
    }
    if (min !== undefined && max !== undefined) bad = n < min || n > max;
    else if (min !== undefined) bad = n < min;
    else if (max !== undefined) bad = n > max;
    if (!bad) return n;
    if (min !== undefined && max !== undefined)
      this.error(name, `must be between ${min} and ${max}, got ${n}`);
    else if (min !== undefined) this.error(name, `must be at least ${min}, got ${n}`);
    else this.error(name, `must be at most ${max}, got ${n}`);
    return undefined;
  }
}

/** A value in a message: its type, and for scalars the value itself (shortened). */
export function describe(value: TomlValue): string {
  const type = tomlTypeName(value);
  if (Array.isArray(value) || isTable(value)) return type;
  return `${type} (${show(value)})`;
}

const MAX_SHOWN = 60;

export function show(value: TomlValue): string {
  let text: string;
  if (typeof value === "string") text = JSON.stringify(value);
  else if (value instanceof TomlDate) text = value.toISOString();
  else if (typeof value === "object") text = tomlTypeName(value);
  // 445.0 is a float: show it as one, or "got a float (445)" reads like a contradiction.
  else if (typeof value === "number" && Number.isInteger(value)) text = value.toFixed(1);
  else text = String(value);
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 1)}…` : text;
}

/** The known key closest to a misspelt one, if it is close enough to be a typo. */
function suggest(name: string, known: string[]): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(name.length / 4)) + 1;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
