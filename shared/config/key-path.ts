// Key paths as an operator reads them: probes[1].share, labels."my key".
// The line index and the readers build paths with these two functions only,
// so a path a reader reports always matches the path the index recorded.

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** parent + one key; keys that TOML would need to quote are shown quoted. */
export function joinKey(parent: string, key: string): string {
  const text = BARE_KEY.test(key) ? key : JSON.stringify(key);
  return parent === "" ? text : `${parent}.${text}`;
}

/** parent + one array index (0-based). */
export function indexKey(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

// The last segment of a path: .bare, ."quoted", [n], or a first segment.
const LAST_SEGMENT = /(?:\.[A-Za-z0-9_-]+|\."(?:[^"\\]|\\.)*"|\[\d+\])$/;

/** The path one level up, or null for a top-level key. */
export function parentKey(path: string): string | null {
  const m = LAST_SEGMENT.exec(path);
  if (m === null) return null;
  return path.slice(0, m.index);
}
