import { parse } from "smol-toml";
import { describe, expect, it } from "vitest";
import { indexLines } from "./line-index.ts";
import { parentKey } from "./key-path.ts";

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
