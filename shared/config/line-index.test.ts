import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse, TomlDate, type TomlTable, type TomlValue } from "smol-toml";
import { describe, expect, it } from "vitest";
import { indexLines } from "./line-index.ts";
import { indexKey, joinKey, parentKey } from "./key-path.ts";

const DOC = `# comment line 1
top = 1
[agent]
site = "paris" # trailing comment
notes = """
line one
[[probes]]
key = "not a key"
"""
raw = '''
also = "not a key"
'''
dotted.inner.leaf = true

[[probes]]
name = "a"
labels = { team = "storage", "odd key" = "x", nested = { deep = 1 } }
list = [
  "one", # comment inside an array
  "two",
  { a = 1 },
]
[probes.latency_thresholds]
login = 2

[[probes]]
'quoted key' = "v"
esc = "a \\" b"
[[probes.sub]]
x = 1
[[probes.sub]]
x = 2
[server]
when = 1979-05-27 07:32:00Z
`;

describe("indexLines", () => {
  const index = indexLines(DOC);

  it("parses what smol-toml parses (the fixture itself is valid)", () => {
    expect(() => parse(DOC)).not.toThrow();
  });

  it.each([
    ["top", 2],
    ["agent", 3],
    ["agent.site", 4],
    ["agent.notes", 5],
    ["agent.raw", 10],
    ["agent.dotted", 13],
    ["agent.dotted.inner.leaf", 13],
    ["probes", 15],
    ["probes[0]", 15],
    ["probes[0].name", 16],
    ["probes[0].labels", 17],
    ["probes[0].labels.team", 17],
    ['probes[0].labels."odd key"', 17],
    ["probes[0].labels.nested.deep", 17],
    ["probes[0].list", 18],
    ["probes[0].list[0]", 19],
    ["probes[0].list[1]", 20],
    ["probes[0].list[2].a", 21],
    ["probes[0].latency_thresholds", 23],
    ["probes[0].latency_thresholds.login", 24],
    ["probes[1]", 26],
    ['probes[1]."quoted key"', 27],
    ["probes[1].esc", 28],
    ["probes[1].sub[0].x", 30],
    ["probes[1].sub[1].x", 32],
    ["server.when", 34],
  ])("%s is on line %i", (path, line) => {
    expect(index.get(path)).toBe(line);
  });

  it("does not index keys inside multi-line strings", () => {
    expect(index.get("agent.also")).toBeUndefined();
    expect(index.get("agent.key")).toBeUndefined();
    expect(index.get("probes[2]")).toBeUndefined();
  });

  it("falls back to the enclosing key, then to 0", () => {
    expect(index.lineOf("probes[1].share")).toBe(26);
    expect(index.lineOf("probes[0].labels.missing")).toBe(17);
    expect(index.lineOf("nowhere.at.all")).toBe(0);
  });
});

describe("parentKey", () => {
  it.each([
    ["probes[1].share", "probes[1]"],
    ["probes[1]", "probes"],
    ['labels."a.b"', "labels"],
    ["probes", null],
  ])("%s -> %s", (path, parent) => {
    expect(parentKey(path)).toBe(parent);
  });
});

describe("indexLines on real files", () => {
  const root = join(import.meta.dirname, "../..");
  // smbprobe's own files when a copy sits beside the clone; the project's
  // fixtures in test/fixtures/smbprobe have the same shapes either way.
  const upstream = join(root, "../shared/smbprobe-testdata");
  const files = [
    ...["config/valid", "config/invalid", "smbprobe"].flatMap((d) => {
      const dir = join(root, "test/fixtures", d);
      return readdirSync(dir).map((f) => join(dir, f));
    }),
    ...["agent.toml", "aggregator.toml", "notifier.toml"].map((f) => join(root, "config", f)),
    ...(existsSync(upstream)
      ? ["test_good1.toml", "test_good3.toml", "probe.toml.example"].map((f) => join(upstream, f))
      : []),
  ].filter((f) => statSync(f).isFile() && !f.endsWith(".md"));

  // Every key smol-toml parsed is found by the index, on a line that spells it.
  it.each(files)("indexes every key of %s", (file) => {
    const text = readFileSync(file, "utf8");
    let table: TomlTable;
    try {
      table = parse(text);
    } catch {
      return; // the syntax-error fixture
    }
    for (const variant of [text, text.replaceAll("\n", "\r\n")]) {
      const index = indexLines(variant);
      const lines = variant.split("\n");
      for (const [path, last] of keyPaths(table, "")) {
        const line = index.get(path);
        expect(line, path).toBeGreaterThan(0);
        expect(lines[line! - 1], path).toContain(last);
      }
    }
  });
});

function* keyPaths(value: TomlValue, path: string): Generator<[string, string]> {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) yield* keyPaths(item, indexKey(path, i));
  } else if (typeof value === "object" && !(value instanceof TomlDate)) {
    for (const [k, v] of Object.entries(value)) {
      const child = joinKey(path, k);
      yield [child, k];
      yield* keyPaths(v, child);
    }
  }
}
