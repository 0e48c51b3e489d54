import { describe, expect, it } from "vitest";
import {
  agentPrefix,
  nextRunStamp,
  ownRunStart,
  parseListing,
  quoteArg,
  runNames,
  staleEntries,
} from "./names.ts";

describe("test file names", () => {
  it("carry the agent id and the run start", () => {
    const n = runNames("paris-01", 1_700_000_000_000);
    expect(n.file(3)).toBe(".smbfleet-probe-paris-01-1700000000000-3");
    expect(n.renamed(3)).toBe(".smbfleet-probe-paris-01-1700000000000-3-r");
    expect(n.dir).toBe(".smbfleet-probe-paris-01-1700000000000-d");
  });

  it("replace characters SMB names cannot hold", () => {
    expect(agentPrefix('a b/c\\d:e*"f')).toBe(".smbfleet-probe-a_b_c_d_e__f-");
  });

  it("are recognised only as this agent's", () => {
    const name = runNames("a-1", 42).file(0);
    expect(ownRunStart("a-1", name)).toBe(42);
    // Agent "a" must not claim agent "a-1"'s files, nor anything else.
    expect(ownRunStart("a", name)).toBeNull();
    expect(ownRunStart("a-1", ".smbfleet-probe-a-1-42-0.bak")).toBeNull();
    expect(ownRunStart("a-1", "report.docx")).toBeNull();
    expect(ownRunStart("a-1", runNames("a-1", 42).renamed(2))).toBe(42);
    expect(ownRunStart("a-1", runNames("a-1", 42).dir)).toBe(42);
  });
});

describe("nextRunStamp", () => {
  it("is the start time, but never the same twice in one process", () => {
    const a = nextRunStamp(5_000_000_000_000);
    const b = nextRunStamp(5_000_000_000_000);
    const c = nextRunStamp(5_000_000_000_100);
    expect(a).toBe(5_000_000_000_000);
    expect(b).toBe(5_000_000_000_001);
    expect(c).toBe(5_000_000_000_100);
  });
});

describe("parseListing", () => {
  it("reads names, including ones with spaces, and directories", () => {
    const lines = [
      "  .                                   D        0  Sun Nov 22 05:18:13 2026",
      "  ..                                  D        0  Sun Nov 22 05:18:04 2026",
      "  .smbfleet-probe-paris-01-1700000000000-0      AH     4096  Sun Nov 22 05:18:13 2026",
      "  annual report 2026.xlsx             A    12345  Mon Jan  5 09:01:02 2026",
      "  .smbfleet-probe-paris-01-1700000000000-d      DH        0  Sun Nov 22 05:18:13 2026",
      "  plain                               N       30  Sun Nov 22 05:21:29 2026",
      "",
      "\t\t264212084 blocks of size 1024. 82311364 blocks available",
    ];
    expect(parseListing(lines)).toEqual([
      { name: ".smbfleet-probe-paris-01-1700000000000-0", isDirectory: false },
      { name: "annual report 2026.xlsx", isDirectory: false },
      { name: ".smbfleet-probe-paris-01-1700000000000-d", isDirectory: true },
      { name: "plain", isDirectory: false },
    ]);
  });
});

describe("staleEntries", () => {
  const start = 1_700_000_100_000;
  const timeout = 60_000;
  const entries = [
    { name: runNames("me", start).file(0), isDirectory: false }, // this run
    { name: runNames("me", start - 30_000).file(0), isDirectory: false }, // may still be running
    { name: runNames("me", start - 61_000).file(1), isDirectory: false }, // dead
    { name: runNames("me", start - 61_000).dir, isDirectory: true }, // dead
    { name: runNames("other", start - 600_000).file(0), isDirectory: false }, // not ours
    { name: "report.docx", isDirectory: false },
  ];

  it("are this agent's entries older than a run can live", () => {
    expect(staleEntries(entries, "me", start, timeout).map((e) => e.name)).toEqual([
      runNames("me", start - 61_000).file(1),
      runNames("me", start - 61_000).dir,
    ]);
  });
});

describe("quoteArg", () => {
  it("quotes names with spaces", () => {
    expect(quoteArg("my dir/sub")).toBe('"my dir/sub"');
  });

  it("refuses what would break the command line", () => {
    expect(() => quoteArg('a"b')).toThrow(RangeError);
    expect(() => quoteArg("a\nrm *")).toThrow(RangeError);
  });
});
