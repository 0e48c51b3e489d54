// The agent's durable buffer: every probe result is committed to SQLite before
// it is sent, the sender reads consecutive runs of it, and only what the
// aggregator acknowledged is deleted. Bounded by bytes and age; what is dropped
// to stay inside the bounds is counted in the file itself, so the count
// survives restarts and reaches the aggregator in the next Heartbeat.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { toBinary } from "@bufbuild/protobuf";
import { ResultSchema } from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import type { BufferLimits } from "../../shared/config/types.ts";
import { SmbfleetError, errorMessage } from "../../shared/errors.ts";
import { silentLogger, type Logger } from "../../shared/logger.ts";
import type { ProbeResult } from "../../shared/result.ts";
import { resultToWire } from "../../shared/wire/result-codec.ts";
import { SCHEMA_VERSION, prepareSchema } from "./schema.ts";
import { BufferStatements } from "./statements.ts";

export interface BufferedResult {
  seq: number;
  /** The result as smbfleet.v1.Result protobuf bytes, ready to go into a Batch unchanged. */
  bytes: Uint8Array;
}

export interface Backlog {
  /** Results buffered and not yet acknowledged. */
  count: number;
  /** Their protobuf bytes (SQLite's own page overhead comes on top, roughly 10–20 %). */
  bytes: number;
  /** When the oldest of them entered the buffer (epoch ms), null when empty. */
  oldestMs: number | null;
}

export interface BufferOptions {
  /** Clock for created_at and the age limit; tests move it. */
  now?: () => number;
  logger?: Logger;
  /** Told of every drop, with its reason (the agent's metrics count them by reason). */
  onDrop?: (reason: DropReason, count: number) => void;
}

export type DropReason = "bytes" | "age" | "disk_full";

export interface ResultBuffer {
  /** Commits one result (one transaction, fsynced) and returns its sequence number. Never throws for a full buffer: the oldest are dropped instead. */
  append(result: ProbeResult): number;
  /** Commits many results, APPEND_MANY_CHUNK per transaction (bulk loads, benchmarks). */
  appendMany(results: readonly ProbeResult[]): void;
  /** Up to maxCount results after afterSeq, at most maxBytes (but at least one), stopping at the first gap in seq. */
  read(afterSeq: number, maxCount: number, maxBytes: number): BufferedResult[];
  /** Deletes every result with seq <= seq (the aggregator committed them); returns how many. */
  ackUpTo(seq: number): number;
  /** Deletes results in [firstSeq, lastSeq] the aggregator refused for good; not counted as dropped. */
  discard(firstSeq: number, lastSeq: number): number;
  /**
   * Makes sure every buffered and future seq is above seq: when the aggregator
   * has committed seqs this file never handed out (the file was lost or
   * replaced), the buffered results are renumbered after it instead of being
   * mistaken for duplicates. Returns how many were renumbered.
   */
  ensureSeqAbove(seq: number): number;
  /** The largest seq ever handed out by this file (0 when none). */
  lastSeq(): number;
  backlog(): Backlog;
  /** Results dropped to stay within the limits, ever (persisted). */
  dropped(): number;
  /** Drops the oldest results that are over the byte or age limit; returns how many were dropped now. */
  enforceLimits(): number;
  close(): void;
}

/**
 * appendMany commits this many results per transaction: large enough that the
 * per-commit fsync is amortised (~1 µs a row), small enough that the WAL does
 * not grow by hundreds of MB before a checkpoint can run.
 */
export const APPEND_MANY_CHUNK = 5_000;

/**
 * Over the byte limit, the oldest results are dropped until the backlog is at
 * this fraction of the limit, so that a buffer that stays full drops in chunks
 * (one log line each) rather than one result on every append.
 */
export const DROP_TO_FRACTION = 0.9;

/** SQLite's SQLITE_FULL: the disk (or quota) is full. */
const SQLITE_FULL = 13;

export function openBuffer(path: string, limits: BufferLimits, options: BufferOptions = {}): ResultBuffer {
  const now = options.now ?? Date.now;
  const logger = options.logger ?? silentLogger();
  const fail = (doing: string, err: unknown): SmbfleetError =>
    new SmbfleetError("BUFFER_IO", `buffer ${path}: ${doing}: ${errorMessage(err)}`, { cause: err });

  let db: DatabaseSync;
  let st: BufferStatements;
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    db = new DatabaseSync(path);
  } catch (err) {
    throw fail("opening", err);
  }
  try {
    const version = prepareSchema(db);
    if (version > SCHEMA_VERSION) {
      throw new Error(`written by a newer smbfleet (schema ${version}, this one knows ${SCHEMA_VERSION})`);
    }
    st = new BufferStatements(db);
  } catch (err) {
    db.close();
    throw fail("opening", err);
  }

  // Running totals, so that limits and backlog never scan the table; loaded
  // once here and re-read after any rolled-back transaction.
  let count = 0;
  let bytes = 0;
  let droppedTotal = 0;
  const recount = (): void => {
    ({ count, bytes } = st.totals());
    droppedTotal = st.droppedCounter();
  };
  recount();
  let closed = false;

  const inTransaction = <T>(doing: string, body: () => T): T => {
    if (closed) throw fail(doing, new Error("buffer is closed"));
    try {
      db.exec("BEGIN IMMEDIATE");
      const out = body();
      db.exec("COMMIT");
      return out;
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      recount();
      throw err instanceof SmbfleetError ? err : fail(doing, err);
    }
  };

  /** Deletes the oldest rows up to and including seq and counts them as dropped. Inside a transaction. */
  const dropThrough = (seq: number, reason: DropReason): number => {
    const gone = st.deleteThrough(seq);
    if (gone.count === 0) return 0;
    count -= gone.count;
    bytes -= gone.bytes;
    droppedTotal += gone.count;
    st.setDropped(droppedTotal);
    logger.warn(
      { dropped: gone.count, droppedTotal, reason, backlog: count, backlogBytes: bytes },
      `buffer over its ${reason === "age" ? "age" : "byte"} limit: dropped the ${gone.count} oldest results`,
    );
    options.onDrop?.(reason, gone.count);
    return gone.count;
  };

  /** The limits, inside a transaction; cheap when nothing is over (two comparisons and one indexed lookup). */
  const enforce = (): number => {
    let n = 0;
    const cutoff = now() - limits.maxAgeSeconds * 1000;
    const oldest = st.oldestCreatedAt();
    if (oldest !== null && oldest < cutoff) {
      const through = st.lastSeqCreatedBefore(cutoff);
      if (through !== null) n += dropThrough(through, "age");
    }
    if (bytes > limits.maxBytes) {
      const through = st.seqToFreeBytes(bytes - Math.floor(limits.maxBytes * DROP_TO_FRACTION));
      if (through !== null) n += dropThrough(through, "bytes");
    }
    return n;
  };

  const insert = (body: Uint8Array): number => {
    const seq = st.insert(now(), body);
    count += 1;
    bytes += body.length;
    return seq;
  };

  const encode = (r: ProbeResult): Uint8Array => toBinary(ResultSchema, resultToWire(r));

  return {
    append(result) {
      const body = encode(result);
      try {
        return inTransaction("appending", () => {
          const seq = insert(body);
          enforce();
          return seq;
        });
      } catch (err) {
        if (!isDiskFull(err) || count === 0) throw err;
        // A full disk is a full buffer too: make room from the oldest and try once more.
        inTransaction("making room on a full disk", () => {
          const through = st.seqToFreeBytes(Math.max(body.length, Math.ceil(bytes * (1 - DROP_TO_FRACTION))));
          if (through !== null) dropThrough(through, "disk_full");
        });
        return inTransaction("appending", () => insert(body));
      }
    },

    appendMany(results) {
      for (let i = 0; i < results.length; i += APPEND_MANY_CHUNK) {
        const bodies = results.slice(i, i + APPEND_MANY_CHUNK).map(encode);
        inTransaction("appending", () => {
          for (const body of bodies) insert(body);
          enforce();
        });
      }
    },

    read(afterSeq, maxCount, maxBytes) {
      if (closed) throw fail("reading", new Error("buffer is closed"));
      let rows: BufferedResult[];
      try {
        rows = st.readAfter(afterSeq, maxCount);
      } catch (err) {
        throw fail("reading", err);
      }
      const out: BufferedResult[] = [];
      let size = 0;
      for (const row of rows) {
        const prev = out[out.length - 1];
        if (prev !== undefined && row.seq !== prev.seq + 1) break;
        if (out.length > 0 && size + row.bytes.length > maxBytes) break;
        out.push(row);
        size += row.bytes.length;
      }
      return out;
    },

    ackUpTo(seq) {
      if (count === 0) return 0;
      return inTransaction("deleting acknowledged results", () => {
        const gone = st.deleteThrough(seq);
        count -= gone.count;
        bytes -= gone.bytes;
        return gone.count;
      });
    },

    discard(firstSeq, lastSeq) {
      return inTransaction("discarding rejected results", () => {
        const gone = st.deleteRange(firstSeq, lastSeq);
        count -= gone.count;
        bytes -= gone.bytes;
        return gone.count;
      });
    },

    ensureSeqAbove(seq) {
      return inTransaction("renumbering", () => {
        const last = st.lastSeq();
        if (seq <= last) return 0;
        const lowest = st.lowestSeq();
        let moved = 0;
        if (lowest !== null) moved = st.shiftAll(seq + 1 - lowest);
        st.setLastSeq(Math.max(seq, st.highestSeq() ?? 0));
        logger.warn(
          { aggregatorHighWater: seq, bufferLastSeq: last, renumbered: moved },
          "aggregator has seen sequence numbers this buffer never handed out (buffer file replaced?): continuing after them",
        );
        return moved;
      });
    },

    lastSeq: () => st.lastSeq(),

    backlog: () => ({ count, bytes, oldestMs: count === 0 ? null : st.oldestCreatedAt() }),

    dropped: () => droppedTotal,

    enforceLimits: () => inTransaction("enforcing limits", enforce),

    close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}

function isDiskFull(err: unknown): boolean {
  const cause = err instanceof SmbfleetError ? err.cause : err;
  return (
    typeof cause === "object" && cause !== null && (cause as { errcode?: unknown }).errcode === SQLITE_FULL
  );
}
