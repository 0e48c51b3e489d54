import { describe, expect, it } from "vitest";
import { fakeResult, fakeTarget } from "./scheduler/testing.ts";
import { formatReport, statusLine } from "./probe-table.ts";

describe("probe table", () => {
  it("prints op, samples, median, p95 and failures per target and a status line", () => {
    const ok = fakeResult(fakeTarget({ name: "finance", share: "finance" }), { durationMs: 41.2 });
    const bad = fakeResult(fakeTarget({ name: "archive", share: "archive", remoteBasedir: "probe" }), {
      healthy: false,
      failureClass: "access_denied",
      failureMessage: "NT_STATUS_ACCESS_DENIED opening remote file \\probe\\x",
      operations: [
        { operation: "login", samplesMs: [14.25], failures: 0 },
        { operation: "write", samplesMs: [], failures: 5 },
      ],
    });
    const text = formatReport([ok, bad]);
    expect(text).toBe(
      [
        "finance  //127.0.0.1:445/finance  (41 ms)",
        "  op      samples  median ms  p95 ms  failures",
        "  login         1      12.50   12.50         0",
        "  write         5       0.95    1.10         0",
        "  ls_dir        1       1.20    1.20         0",
        "  read          5       1.05    1.20         0",
        "  unlink        5       1.00    1.10         0",
        "  status: healthy",
        "",
        "archive  //127.0.0.1:445/archive/probe  (20 ms)",
        "  op     samples  median ms  p95 ms  failures",
        "  login        1      14.25   14.25         0",
        "  write        0          -       -         5",
        "  status: UNHEALTHY: access_denied: NT_STATUS_ACCESS_DENIED opening remote file \\probe\\x",
        "",
        "2 targets: 1 healthy, 1 UNHEALTHY",
        "",
      ].join("\n"),
    );
  });

  it("names slow operations when latency alone made a run unhealthy", () => {
    const slow = fakeResult(fakeTarget(), { healthy: false, aboveThreshold: ["login", "read"] });
    expect(statusLine(slow)).toBe("UNHEALTHY: latency: median above threshold for login, read");
    expect(formatReport([slow])).toContain("  read (slow)");
    expect(statusLine(fakeResult(fakeTarget(), { healthy: false, failureClass: "timeout" }))).toBe(
      "UNHEALTHY: timeout",
    );
  });
});
