// PostgreSQL COPY text format: one line per row, tab between columns, \N for
// NULL, and backslash escapes for backslash, newline, carriage return and tab
// inside values (https://www.postgresql.org/docs/15/sql-copy.html, "Text Format").

const SPECIAL = /[\\\n\r\t]/;
const SPECIAL_ALL = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** One column value; null becomes \N. */
export function copyField(value: string | null): string {
  if (value === null) return "\\N";
  return SPECIAL.test(value) ? value.replace(SPECIAL_ALL, (c) => ESCAPES[c]!) : value;
}

/** A PostgreSQL array literal of simple identifiers (no quoting needed: operation names). */
export function copyIdentArray(values: readonly string[]): string {
  return `{${values.join(",")}}`;
}
