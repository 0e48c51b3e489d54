// The buffer's SQLite file: pragmas and tables. Every result is committed here
// before it is sent; the sequence number SQLite assigns is the result's
// per-agent sequence on the wire.
import type { DatabaseSync } from "node:sqlite";

/** Bumped when the tables change incompatibly; a newer file is refused rather than misread. */
export const SCHEMA_VERSION = 1;

/**
 * Pragmas set on every open, each for a reason:
 * - journal_mode=WAL: a commit is one sequential append to the WAL plus one
 *   fsync, cheaper than the rollback journal's several, so append() stays short.
 * - synchronous=FULL: in WAL mode NORMAL already survives SIGKILL (the WAL is
 *   in the page cache), but a power loss can roll back the last commits. FULL
 *   fsyncs the WAL on every commit, so a seq that append() returned is on disk
 *   even if the machine loses power the next instant.
 * - locking_mode=EXCLUSIVE: the lock is held for the life of the connection, so
 *   a second agent pointed at the same file fails at open instead of sending
 *   the same results twice under one identity; it also lets WAL work without
 *   the shared-memory file.
 * - busy_timeout: how long open waits for another holder of the lock before
 *   failing. 2 s covers a previous agent process that is still shutting down.
 */
const PRAGMAS = [
  "PRAGMA locking_mode = EXCLUSIVE",
  "PRAGMA journal_mode = WAL",
  "PRAGMA synchronous = FULL",
  "PRAGMA busy_timeout = 2000",
];

/**
 * results.seq is INTEGER PRIMARY KEY AUTOINCREMENT: AUTOINCREMENT (unlike a
 * plain rowid) keeps the largest seq ever handed out in sqlite_sequence, so a
 * seq is never reused even after the newest rows are acked and deleted, and
 * the file is closed and opened again. The aggregator skips anything at or
 * below its high-water mark, so a reused seq would be a silently lost result.
 *
 * size is the byte length of body, kept so that byte accounting never reads
 * the blobs. created_at_ms is when the result entered the buffer (age limit).
 */
const TABLES = [
  `CREATE TABLE IF NOT EXISTS results (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     created_at_ms INTEGER NOT NULL,
     size INTEGER NOT NULL,
     body BLOB NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS meta (
     key TEXT PRIMARY KEY,
     value INTEGER NOT NULL
   ) WITHOUT ROWID`,
];

export const META_DROPPED = "dropped";
const META_SCHEMA_VERSION = "schema_version";

/** Applies pragmas and creates the tables; returns the file's schema version. */
export function prepareSchema(db: DatabaseSync): number {
  for (const pragma of PRAGMAS) db.exec(pragma);
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const ddl of TABLES) db.exec(ddl);
    const insert = db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)");
    insert.run(META_DROPPED, 0);
    insert.run(META_SCHEMA_VERSION, SCHEMA_VERSION);
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
  const row = db.prepare("SELECT value FROM meta WHERE key = ?").get(META_SCHEMA_VERSION);
  return Number(row?.["value"] ?? 0);
}
