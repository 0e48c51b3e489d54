import { describe, expect, it } from "vitest";
import type { Db } from "../../db/connect.ts";
import { BatchPool } from "./batch-pool.ts";

const fakeSql = {} as Db;

describe("BatchPool", () => {
  it("never runs more batches at once than it has connections, and runs every one", async () => {
    const pool = new BatchPool(fakeSql, 3);
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        pool.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 1 + (i % 3)));
          running--;
          done.push(i);
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(pool.waiting).toBe(0);
  });

  it("frees the slot when a batch fails", async () => {
    const pool = new BatchPool(fakeSql, 1);
    await expect(pool.run(() => Promise.reject(new Error("db down")))).rejects.toThrow("db down");
    await expect(pool.run(() => Promise.resolve("stored"))).resolves.toBe("stored");
  });

  it("refuses a size that is not a positive integer", () => {
    expect(() => new BatchPool(fakeSql, 0)).toThrow(RangeError);
  });
});
