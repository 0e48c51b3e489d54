// Filling the buffer for bench/drain, and the baseline: reading every row back
// the way the sender does, without sending.
import { statSync } from "node:fs";
import { openBuffer } from "../../agent/buffer/buffer.ts";
import { sampleResult } from "../../agent/buffer/testdata/sample-result.ts";
import { DEFAULT_SHIPPER_OPTIONS } from "../../agent/pusher/options.ts";
import type { BufferLimits } from "../../shared/config/types.ts";

/** Results generated and appended per step while filling: bounds the filler's memory. */
const FILL_STEP = 50_000;
/** Large enough that nothing is dropped while the bench fills and drains. */
export const BENCH_LIMITS: BufferLimits = { maxBytes: 4 * 1024 ** 3, maxAgeSeconds: 30 * 86_400 };

export interface Filled {
  ms: number;
  protobufBytes: number;
  fileBytes: number;
}

/**
 * Appends `total` results, spaced 10 ms apart ending now (a buffer that filled
 * while the link was down), through appendMany.
 */
export function fillBuffer(path: string, total: number): Filled {
  const t0 = performance.now();
  const buffer = openBuffer(path, BENCH_LIMITS);
  const base = Date.now() - total * 10;
  for (let i = 0; i < total; i += FILL_STEP) {
    const n = Math.min(FILL_STEP, total - i);
    buffer.appendMany(Array.from({ length: n }, (_, k) => sampleResult(i + k + 1, base + (i + k) * 10)));
  }
  const protobufBytes = buffer.backlog().bytes;
  buffer.close();
  return { ms: performance.now() - t0, protobufBytes, fileBytes: statSync(path).size };
}

/** Reads every buffered result in the sender's batch sizes; returns the time taken. */
export function readAll(path: string, expected: number): number {
  const t0 = performance.now();
  const buffer = openBuffer(path, BENCH_LIMITS);
  let after = 0;
  let read = 0;
  for (;;) {
    const run = buffer.read(
      after,
      DEFAULT_SHIPPER_OPTIONS.maxBatchResults,
      DEFAULT_SHIPPER_OPTIONS.maxBatchBytes,
    );
    const last = run[run.length - 1];
    if (last === undefined) break;
    read += run.length;
    after = last.seq;
  }
  buffer.close();
  if (read !== expected) throw new Error(`baseline read ${read} of ${expected}`);
  return performance.now() - t0;
}
