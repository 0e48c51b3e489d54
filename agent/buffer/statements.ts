// The buffer's SQL, prepared once per open so that an append costs one insert
// and one commit. Every statement walks the primary key (seq); none scans blobs.
import type { DatabaseSync, SQLOutputValue, StatementSync } from "node:sqlite";
import { META_DROPPED } from "./schema.ts";

export interface Removed {
  count: number;
  bytes: number;
}

export class BufferStatements {
  readonly #insert: StatementSync;
  readonly #readAfter: StatementSync;
  readonly #sizesAfter: StatementSync;
  readonly #totalsThrough: StatementSync;
  readonly #deleteThrough: StatementSync;
  readonly #totalsRange: StatementSync;
  readonly #deleteRange: StatementSync;
  readonly #totals: StatementSync;
  readonly #oldest: StatementSync;
  readonly #minMax: StatementSync;
  readonly #lastSeq: StatementSync;
  readonly #updateLastSeq: StatementSync;
  readonly #insertLastSeq: StatementSync;
  readonly #shift: StatementSync;
  readonly #getMeta: StatementSync;
  readonly #setMeta: StatementSync;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare("INSERT INTO results (created_at_ms, size, body) VALUES (?, ?, ?)");
    this.#readAfter = db.prepare("SELECT seq, body AS bytes FROM results WHERE seq > ? ORDER BY seq LIMIT ?");
    this.#sizesAfter = db.prepare(
      "SELECT seq, size, created_at_ms FROM results WHERE seq > ? ORDER BY seq LIMIT ?",
    );
    this.#totalsThrough = db.prepare(
      "SELECT COUNT(*) AS c, COALESCE(SUM(size), 0) AS b FROM results WHERE seq <= ?",
    );
    this.#deleteThrough = db.prepare("DELETE FROM results WHERE seq <= ?");
    this.#totalsRange = db.prepare(
      "SELECT COUNT(*) AS c, COALESCE(SUM(size), 0) AS b FROM results WHERE seq BETWEEN ? AND ?",
    );
    this.#deleteRange = db.prepare("DELETE FROM results WHERE seq BETWEEN ? AND ?");
    this.#totals = db.prepare("SELECT COUNT(*) AS c, COALESCE(SUM(size), 0) AS b FROM results");
    this.#oldest = db.prepare("SELECT created_at_ms FROM results ORDER BY seq LIMIT 1");
    this.#minMax = db.prepare("SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM results");
    this.#lastSeq = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'results'");
    this.#updateLastSeq = db.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'results'");
    this.#insertLastSeq = db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('results', ?)");
    this.#shift = db.prepare("UPDATE results SET seq = seq + ?");
    this.#getMeta = db.prepare("SELECT value FROM meta WHERE key = ?");
    this.#setMeta = db.prepare("UPDATE meta SET value = ? WHERE key = ?");
  }

  insert(createdAtMs: number, body: Uint8Array): number {
    return Number(this.#insert.run(createdAtMs, body.length, body).lastInsertRowid);
  }

  readAfter(afterSeq: number, limit: number): { seq: number; bytes: Uint8Array }[] {
    // The rows come back already in the caller's shape (column aliases), so a
    // drain of a million results allocates no second object per row.
    return this.#readAfter.all(afterSeq, limit) as unknown as { seq: number; bytes: Uint8Array }[];
  }

  /** The seq through which deleting the oldest rows frees at least `need` bytes (null when empty). */
  seqToFreeBytes(need: number): number | null {
    let freed = 0;
    let last: number | null = null;
    for (;;) {
      const rows: Record<string, SQLOutputValue>[] = this.#sizesAfter.all(last ?? 0, SCAN_CHUNK);
      for (const row of rows) {
        last = Number(row["seq"]);
        freed += Number(row["size"]);
        if (freed >= need) return last;
      }
      if (rows.length < SCAN_CHUNK) return last;
    }
  }

  /** The last seq of the leading run of rows created before cutoff (null when the oldest is not). */
  lastSeqCreatedBefore(cutoffMs: number): number | null {
    let last: number | null = null;
    for (;;) {
      const rows: Record<string, SQLOutputValue>[] = this.#sizesAfter.all(last ?? 0, SCAN_CHUNK);
      for (const row of rows) {
        if (Number(row["created_at_ms"]) >= cutoffMs) return last;
        last = Number(row["seq"]);
      }
      if (rows.length < SCAN_CHUNK) return last;
    }
  }

  deleteThrough(seq: number): Removed {
    const removed = toRemoved(this.#totalsThrough.get(seq));
    if (removed.count > 0) this.#deleteThrough.run(seq);
    return removed;
  }

  deleteRange(first: number, last: number): Removed {
    const removed = toRemoved(this.#totalsRange.get(first, last));
    if (removed.count > 0) this.#deleteRange.run(first, last);
    return removed;
  }

  totals(): Removed {
    return toRemoved(this.#totals.get());
  }

  oldestCreatedAt(): number | null {
    const row = this.#oldest.get();
    return row === undefined ? null : Number(row["created_at_ms"]);
  }

  lowestSeq(): number | null {
    const lo = this.#minMax.get()?.["lo"];
    return lo === null || lo === undefined ? null : Number(lo);
  }

  highestSeq(): number | null {
    const hi = this.#minMax.get()?.["hi"];
    return hi === null || hi === undefined ? null : Number(hi);
  }

  /** The largest seq AUTOINCREMENT ever handed out (0 before the first insert). */
  lastSeq(): number {
    return Number(this.#lastSeq.get()?.["seq"] ?? 0);
  }

  setLastSeq(seq: number): void {
    if (this.#updateLastSeq.run(seq).changes === 0) this.#insertLastSeq.run(seq);
  }

  /**
   * Adds offset to every seq. Callers pass an offset that moves all rows above
   * the current maximum, so no row collides with one not yet moved.
   */
  shiftAll(offset: number): number {
    return Number(this.#shift.run(offset).changes);
  }

  droppedCounter(): number {
    return Number(this.#getMeta.get(META_DROPPED)?.["value"] ?? 0);
  }

  setDropped(total: number): void {
    this.#setMeta.run(total, META_DROPPED);
  }
}

/** Rows looked at per step when walking the oldest rows for the limits; bounds memory, not work. */
const SCAN_CHUNK = 1_000;

function toRemoved(row: Record<string, unknown> | undefined): Removed {
  return { count: Number(row?.["c"] ?? 0), bytes: Number(row?.["b"] ?? 0) };
}
