// Where each key is written. smol-toml returns values without positions, so
// this small scanner walks the raw text once and records, for every key path
// (tables, [[arrays]] with their index, dotted keys, inline tables, array
// elements), the 1-based line where it is written. It runs only on text that
// smol-toml already accepted, so it never reports errors; on anything it does
// not understand it stops early and the index keeps what it found, which only
// makes later lookups fall back to an enclosing table's line.
import { indexKey, joinKey, parentKey } from "./key-path.ts";

export class LineIndex {
  readonly #lines = new Map<string, number>();

  /** Records the line of a key (a later explicit definition wins over an implicit one). */
  set(path: string, line: number, implicit = false): void {
    if (implicit && this.#lines.has(path)) return;
    this.#lines.set(path, line);
  }

  /** The line of path, else of its nearest enclosing key, else 0 (the file as a whole). */
  lineOf(path: string): number {
    for (let p: string | null = path; p !== null && p !== ""; p = parentKey(p)) {
      const line = this.#lines.get(p);
      if (line !== undefined) return line;
    }
    return 0;
  }

  /** Exact lookup, for tests and for "is this key written at all". */
  get(path: string): number | undefined {
    return this.#lines.get(path);
  }
}

const BARE_CHAR = /[A-Za-z0-9_-]/;

class Scanner {
  pos = 0;
  line = 1;
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  get eof(): boolean {
    return this.pos >= this.#text.length;
  }

  peek(offset = 0): string {
    return this.#text[this.pos + offset] ?? "";
  }

  startsWith(s: string): boolean {
    return this.#text.startsWith(s, this.pos);
  }

  next(): string {
    const c = this.peek();
    this.pos += 1;
    if (c === "\n") this.line += 1;
    return c;
  }

  skipInlineSpace(): void {
    while (this.peek() === " " || this.peek() === "\t") this.next();
  }

  skipComment(): void {
    if (this.peek() !== "#") return;
    while (!this.eof && this.peek() !== "\n") this.next();
  }

  /** Whitespace, newlines and comments (between array elements, between statements). */
  skipBlank(): void {
    for (;;) {
      const c = this.peek();
      if (c === " " || c === "\t" || c === "\r" || c === "\n") this.next();
      else if (c === "#") this.skipComment();
      else return;
    }
  }

  /** A basic ("...") or literal ('...') one-line string; returns its value. */
  readQuoted(): string {
    const quote = this.next();
    let raw = "";
    while (!this.eof && this.peek() !== quote && this.peek() !== "\n") {
      const c = this.next();
      raw += c;
      if (quote === '"' && c === "\\") raw += this.next();
    }
    this.next();
    if (quote === "'") return raw;
    try {
      return JSON.parse(
        `"${raw.replace(/\\U([0-9A-Fa-f]{8})/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))}"`,
      ) as string;
    } catch {
      return raw;
    }
  }

  /** A multi-line string starting at """ or '''; only its extent matters. */
  skipMultiline(): void {
    const delim = this.peek().repeat(3);
    this.pos += 3;
    while (!this.eof) {
      if (this.startsWith(delim)) {
        this.pos += 3;
        // Up to two more quotes may belong to the content: """a"""" is a".
        for (let i = 0; i < 2 && this.peek() === delim[0]; i++) this.pos += 1;
        return;
      }
      const c = this.next();
      if (delim === '"""' && c === "\\") this.next();
    }
  }

  /** A dotted key: bare or quoted segments separated by dots. */
  readKey(): string[] {
    const segments: string[] = [];
    for (;;) {
      this.skipInlineSpace();
      const c = this.peek();
      if (c === '"' || c === "'") segments.push(this.readQuoted());
      else {
        let bare = "";
        while (BARE_CHAR.test(this.peek())) bare += this.next();
        if (bare === "") return segments;
        segments.push(bare);
      }
      this.skipInlineSpace();
      if (this.peek() !== ".") return segments;
      this.next();
    }
  }
}

/** Indexes every key of a TOML document by the line where it is written. */
export function indexLines(text: string): LineIndex {
  const index = new LineIndex();
  const s = new Scanner(text);
  const arrayCounts = new Map<string, number>();
  let table = "";
  let guard = text.length + 10;
  try {
    while (guard-- > 0) {
      s.skipBlank();
      if (s.eof) break;
      if (s.peek() === "[") {
        const isArray = s.peek(1) === "[";
        const line = s.line;
        s.pos += isArray ? 2 : 1;
        const segments = s.readKey();
        s.skipInlineSpace();
        s.pos += isArray ? 2 : 1;
        table = resolveHeader(segments, isArray, line, index, arrayCounts);
        s.skipInlineSpace();
        s.skipComment();
      } else if (!readKeyValue(s, table, index)) break;
    }
  } catch {
    // Unreachable on text smol-toml accepted; keep what was indexed.
  }
  return index;
}

function resolveHeader(
  segments: string[],
  isArray: boolean,
  line: number,
  index: LineIndex,
  arrayCounts: Map<string, number>,
): string {
  let path = "";
  segments.forEach((seg, i) => {
    path = joinKey(path, seg);
    const last = i === segments.length - 1;
    if (last && isArray) {
      const n = (arrayCounts.get(path) ?? 0) + 1;
      arrayCounts.set(path, n);
      index.set(path, line, true);
      path = indexKey(path, n - 1);
    } else {
      // Inside [[a]], [a.b] means "b in the last element of a".
      const n = arrayCounts.get(path);
      if (n !== undefined) path = indexKey(path, n - 1);
      if (!last) index.set(path, line, true);
    }
  });
  index.set(path, line);
  return path;
}

/** key = value; records the key (and implicit parents of a dotted key). Returns false if no key was found. */
function readKeyValue(s: Scanner, base: string, index: LineIndex): boolean {
  const line = s.line;
  const segments = s.readKey();
  if (segments.length === 0) return false;
  let path = base;
  segments.forEach((seg, i) => {
    path = joinKey(path, seg);
    index.set(path, line, i < segments.length - 1);
  });
  s.skipInlineSpace();
  if (s.peek() !== "=") return false;
  s.next();
  s.skipInlineSpace();
  scanValue(s, path, index);
  s.skipInlineSpace();
  s.skipComment();
  return true;
}

function scanValue(s: Scanner, path: string, index: LineIndex): void {
  const c = s.peek();
  if ((c === '"' || c === "'") && s.startsWith(c.repeat(3))) s.skipMultiline();
  else if (c === '"' || c === "'") s.readQuoted();
  else if (c === "[") {
    s.next();
    for (let i = 0; ; i++) {
      s.skipBlank();
      if (s.eof || s.peek() === "]") break;
      index.set(indexKey(path, i), s.line);
      scanValue(s, indexKey(path, i), index);
      s.skipBlank();
      if (s.peek() === ",") s.next();
      else if (s.peek() !== "]") break;
    }
    s.next();
  } else if (c === "{") {
    s.next();
    for (;;) {
      s.skipBlank();
      if (s.eof || s.peek() === "}") break;
      if (!readKeyValue(s, path, index)) break;
      s.skipBlank();
      if (s.peek() === ",") s.next();
    }
    s.next();
  } else {
    // Numbers, booleans, dates (which may contain a space): up to a delimiter.
    while (!s.eof && !",]}\n#\r".includes(s.peek())) s.next();
  }
}
