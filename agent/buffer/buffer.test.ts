import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ResultSchema } from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import { isSmbfleetError } from "../../shared/errors.ts";
import type { BufferLimits } from "../../shared/config/types.ts";
import { APPEND_MANY_CHUNK, DROP_TO_FRACTION, openBuffer, type ResultBuffer } from "./buffer.ts";
import { sampleResult } from "./testdata/sample-result.ts";

const ROOMY: BufferLimits = { maxBytes: 1 << 30, maxAgeSeconds: 86_400 };

let dir: string;
let path: string;
const open: ResultBuffer[] = [];
function openAt(limits: BufferLimits = ROOMY, now?: () => number): ResultBuffer {
  const b = openBuffer(path, limits, now ? { now } : {});
  open.push(b);
  return b;
}
function seqs(b: ResultBuffer, after = 0): number[] {
  const out: number[] = [];
  for (;;) {
    const run = b.read(after, 1000, Infinity);
    if (run.length === 0) return out;
    for (const r of run) out.push(r.seq);
    after = run[run.length - 1]!.seq;
  }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "smbfleet-buffer-"));
  path = join(dir, "sub", "buffer.db");
});
afterEach(() => {
  for (const b of open.splice(0)) b.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("sequence numbers", () => {
  it("start at 1 and increase by one per append", () => {
    const b = openAt();
    expect([0, 1, 2, 3].map((i) => b.append(sampleResult(i)))).toEqual([1, 2, 3, 4]);
    expect(b.lastSeq()).toBe(4);
  });

  it("are never reused after the newest rows are deleted, also across reopen", () => {
    let b = openAt();
    for (let i = 0; i < 5; i++) b.append(sampleResult(i));
    expect(b.discard(4, 5)).toBe(2); // the newest rows gone
    expect(b.append(sampleResult(5))).toBe(6);
    expect(b.ackUpTo(6)).toBe(4); // the table is empty now
    b.close();
    b = openAt();
    expect(b.backlog().count).toBe(0);
    expect(b.append(sampleResult(6))).toBe(7);
  });

  it("appendMany assigns consecutive seqs across its transaction chunks", () => {
    const b = openAt();
    b.append(sampleResult(0));
    const n = APPEND_MANY_CHUNK * 2 + 17;
    b.appendMany(Array.from({ length: n }, (_, i) => sampleResult(i + 1)));
    const all = seqs(b);
    expect(all.length).toBe(n + 1);
    expect(all.every((s, i) => s === i + 1)).toBe(true);
    expect(b.backlog().count).toBe(n + 1);
  });

  it("ensureSeqAbove renumbers buffered results after a high-water mark this file never handed out", () => {
    const b = openAt();
    for (let i = 0; i < 3; i++) b.append(sampleResult(i));
    expect(b.ensureSeqAbove(2)).toBe(0); // known seqs: nothing to do
    expect(b.ensureSeqAbove(1000)).toBe(3);
    expect(seqs(b)).toEqual([1001, 1002, 1003]);
    const first = b.read(0, 1, Infinity)[0]!;
    expect(fromBinary(ResultSchema, first.bytes).durationMs).toBe(sampleResult(0).durationMs);
    expect(b.append(sampleResult(3))).toBe(1004);
  });

  it("ensureSeqAbove on an empty buffer moves the next seq", () => {
    const b = openAt();
    b.ensureSeqAbove(50);
    expect(b.append(sampleResult(0))).toBe(51);
  });
});

describe("read and ack", () => {
  it("returns the protobuf bytes of each result", () => {
    const b = openAt();
    b.append(sampleResult(7));
    const [rec] = b.read(0, 10, Infinity);
    const wire = fromBinary(ResultSchema, rec!.bytes);
    expect(wire.target?.share).toBe("share7");
    expect(wire.operations.map((o) => o.operation)).toEqual([
      "login",
      "write",
      "ls_dir",
      "read",
      "unlink",
      "integrity",
    ]);
  });

  it("ackUpTo deletes only up to the seq", () => {
    const b = openAt();
    for (let i = 0; i < 10; i++) b.append(sampleResult(i));
    const before = b.backlog();
    expect(b.ackUpTo(4)).toBe(4);
    expect(seqs(b)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(b.backlog().count).toBe(6);
    expect(b.backlog().bytes).toBeLessThan(before.bytes);
    expect(b.ackUpTo(4)).toBe(0);
    expect(b.ackUpTo(100)).toBe(6);
    expect(b.backlog()).toEqual({ count: 0, bytes: 0, oldestMs: null });
  });

  it("read stops at a gap, and the next read resumes after it", () => {
    const b = openAt();
    for (let i = 0; i < 10; i++) b.append(sampleResult(i));
    b.discard(5, 6);
    expect(b.read(0, 100, Infinity).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(b.read(4, 100, Infinity).map((r) => r.seq)).toEqual([7, 8, 9, 10]);
  });

  it("read honours maxCount and maxBytes but always returns at least one result", () => {
    const b = openAt();
    for (let i = 0; i < 10; i++) b.append(sampleResult(i));
    expect(b.read(0, 3, Infinity).map((r) => r.seq)).toEqual([1, 2, 3]);
    const one = b.read(0, 1, Infinity)[0]!.bytes.length;
    expect(b.read(0, 100, one * 2.5).length).toBe(2);
    expect(b.read(0, 100, 1).map((r) => r.seq)).toEqual([1]);
  });
});

describe("limits", () => {
  it("the byte limit drops the oldest, counts them, and the count survives reopen", () => {
    const size = (() => {
      const probe = openAt();
      probe.append(sampleResult(0));
      const s = probe.backlog().bytes;
      probe.discard(1, 1);
      probe.close();
      return s;
    })();
    const limits = { maxBytes: size * 20, maxAgeSeconds: 86_400 };
    let b = openAt(limits);
    for (let i = 1; i <= 50; i++) b.append(sampleResult(i));
    const kept = seqs(b);
    expect(b.backlog().bytes).toBeLessThanOrEqual(limits.maxBytes);
    expect(kept[kept.length - 1]).toBe(51); // the newest is always kept
    expect(kept[0]).toBe(51 - kept.length + 1); // the kept ones are the newest, without holes
    expect(b.dropped()).toBe(50 - kept.length);
    expect(b.dropped()).toBeGreaterThan(0);
    const dropped = b.dropped();
    b.close();
    b = openAt(limits);
    expect(b.dropped()).toBe(dropped);
    expect(b.backlog().count).toBe(kept.length);
  });

  it("dropping under the byte limit goes down to a fraction of it, not one result at a time", () => {
    const maxBytes = 30_000;
    const b = openAt({ maxBytes, maxAgeSeconds: 86_400 });
    let drops = 0;
    let before = 0;
    for (let i = 0; i < 300; i++) {
      b.append(sampleResult(i));
      if (b.dropped() > before) drops++;
      before = b.dropped();
    }
    const size = b.backlog().bytes / b.backlog().count;
    expect(b.backlog().bytes).toBeLessThanOrEqual(maxBytes);
    expect(drops).toBeGreaterThan(0);
    // Each drop frees (1 - DROP_TO_FRACTION) of the limit: several results at once.
    const perDrop = b.dropped() / drops;
    expect(perDrop).toBeGreaterThanOrEqual(Math.floor((maxBytes * (1 - DROP_TO_FRACTION)) / size) - 1);
    expect(perDrop).toBeGreaterThan(2);
  });

  it("the age limit drops results older than maxAge, on append and on enforceLimits", () => {
    let t = 1_000_000;
    const b = openAt({ maxBytes: 1 << 30, maxAgeSeconds: 60 }, () => t);
    for (let i = 0; i < 5; i++) b.append(sampleResult(i)); // at t
    t += 30_000;
    for (let i = 5; i < 8; i++) b.append(sampleResult(i)); // at t + 30 s
    expect(b.backlog().oldestMs).toBe(1_000_000);
    t += 40_000; // the first five are 70 s old, the next three 40 s
    expect(b.enforceLimits()).toBe(5);
    expect(seqs(b)).toEqual([6, 7, 8]);
    expect(b.backlog().oldestMs).toBe(1_030_000);
    t += 30_000; // the three are 70 s old now; the append drops them
    expect(b.append(sampleResult(8))).toBe(9);
    expect(seqs(b)).toEqual([9]);
    expect(b.dropped()).toBe(8);
    expect(b.enforceLimits()).toBe(0);
  });
});

describe("opening", () => {
  it("a second open of the same file fails with BUFFER_IO instead of sending twice", () => {
    openAt();
    let caught: unknown;
    try {
      openBuffer(path, ROOMY);
    } catch (err) {
      caught = err;
    }
    expect(isSmbfleetError(caught, "BUFFER_IO")).toBe(true);
    expect(String(caught)).toContain(path);
  }, 10_000);

  it("a closed buffer refuses with BUFFER_IO", () => {
    const b = openAt();
    b.close();
    expect(() => b.append(sampleResult(0))).toThrow(/closed/);
  });
});
