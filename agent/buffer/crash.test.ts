// A buffer survives SIGKILL at any instant: every seq a child process saw
// append() return for is in the file when it is opened again.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { openBuffer } from "./buffer.ts";
import { sampleResult } from "./testdata/sample-result.ts";

const CHILD = join(import.meta.dirname, "testdata", "append-loop.ts");
/** Kill after the child reported this many commits (or after KILL_AFTER_MS, whichever is first). */
const KILL_AFTER_COMMITS = 300;
const KILL_AFTER_MS = 8_000;

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Runs the child, SIGKILLs it mid-loop, and returns the seqs it reported committed. */
async function appendThenKill(path: string, killAfterCommits: number): Promise<number[]> {
  const child = spawn(process.execPath, [CHILD, path], { stdio: ["ignore", "pipe", "inherit"] });
  const reported: number[] = [];
  let partial = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), KILL_AFTER_MS);
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) reported.push(Number(line));
    if (reported.length >= killAfterCommits) child.kill("SIGKILL");
  });
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => {
    child.on("exit", (_code, sig) => resolve(sig));
  });
  clearTimeout(timer);
  expect(signal).toBe("SIGKILL");
  return reported;
}

it("keeps every committed seq through SIGKILL, and never reuses a seq after it", async () => {
  dir = mkdtempSync(join(tmpdir(), "smbfleet-crash-"));
  const path = join(dir, "buffer.db");
  const limits = { maxBytes: 1 << 30, maxAgeSeconds: 86_400 };

  const first = await appendThenKill(path, KILL_AFTER_COMMITS);
  expect(first.length).toBeGreaterThan(0);
  // A second round on the same file: recovery from the first kill's WAL, then another kill.
  const second = await appendThenKill(path, Math.floor(KILL_AFTER_COMMITS / 2));
  expect(second[0]).toBeGreaterThan(first[first.length - 1]!);

  const b = openBuffer(path, limits);
  try {
    const present = new Set<number>();
    let after = 0;
    for (;;) {
      const run = b.read(after, 1000, Infinity);
      if (run.length === 0) break;
      for (const r of run) present.add(r.seq);
      after = run[run.length - 1]!.seq;
    }
    const missing = [...first, ...second].filter((s) => !present.has(s));
    expect(missing).toEqual([]);
    expect(b.append(sampleResult(0))).toBeGreaterThan(Math.max(...present));
  } finally {
    b.close();
  }
}, 30_000);
