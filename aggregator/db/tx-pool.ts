// The pool that multi-statement transactions run on: node-postgres (`pg`),
// not postgres.js. postgres.js 3.4.9 kills the process with an uncatchable
// TypeError when the backend of a connection inside sql.begin() or
// sql.reserve() dies (porsager/postgres#1208); docs/architecture.md,
// "Transactions against PostgreSQL", has the reproduction and the measurements.
// node-postgres instead rejects every query on a dead client and emits
// 'error' on it, which must have a listener: the pool's, here, for idle
// clients, withTransaction's while a client is checked out, and one for the
// connection's whole life for the moment between the two (below).
import pg from "pg";
import type { Logger } from "../../shared/logger.ts";
import type { Secret } from "../../shared/secret.ts";
import { DEFAULT_CONNECT_TIMEOUT_SECONDS, STATEMENT_TIMEOUT_MS } from "./connect.ts";

export interface TxPoolOptions {
  url: Secret;
  /** Connections; each open transaction holds one. */
  max: number;
  logger?: Logger;
  /** Shown in pg_stat_activity. */
  applicationName: string;
  /**
   * Per-statement limit; default STATEMENT_TIMEOUT_MS. 0: none, neither on
   * the server nor on the client (migrations: aggregator/db/migrate.ts).
   */
  statementTimeoutMs?: number;
  /** Overrides for tests (e.g. a short connect timeout). */
  connectTimeoutSeconds?: number;
}

/** Idle connections close after this, so a failed-over database is reached by fresh ones (as connect.ts). */
const IDLE_TIMEOUT_MS = 60_000;
/**
 * A transaction that sits idle this long between statements holds its locks
 * for nothing (a caller stuck in its own logic); PostgreSQL ends it.
 */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = STATEMENT_TIMEOUT_MS;
/**
 * The client-side limit on one statement's answer: past the server's own
 * statement_timeout, only a connection that neither answers nor closes is
 * left, and withTransaction then discards it.
 */
const ANSWER_MARGIN_MS = 10_000;

/** int8 as bigint, as the postgres.js pools return it (connect.ts): sequence numbers compare exactly. */
const INT8_OID = 20;

export type TxPool = pg.Pool;

const int8AsBigint = ((oid: number, format?: "text" | "binary"): unknown =>
  oid === INT8_OID && format !== "binary"
    ? (v: string) => BigInt(v)
    : (pg.types.getTypeParser(oid, format ?? "text") as unknown)) as pg.CustomTypesConfig["getTypeParser"];

export function createTxPool(opts: TxPoolOptions): TxPool {
  const statementTimeout = opts.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: opts.url.reveal(),
    max: opts.max,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
    connectionTimeoutMillis: (opts.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS) * 1000,
    application_name: opts.applicationName,
    statement_timeout: statementTimeout,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
    // With no server limit there is no point past which a silent connection
    // is known to be stuck: a long statement is expected (node-postgres reads
    // 0 as "none" for both).
    query_timeout: statementTimeout === 0 ? 0 : statementTimeout + ANSWER_MARGIN_MS,
    // (node-postgres sets TCP_NODELAY on its sockets itself.)
    keepAlive: true,
    types: { getTypeParser: int8AsBigint },
  });
  // An idle connection whose backend died: the pool has already dropped it,
  // and the next transaction gets a fresh one. Without this listener the
  // 'error' event would be thrown and end the process.
  pool.on("error", (err) => {
    opts.logger?.warn({ err: err.message, pool: opts.applicationName }, "idle database connection lost");
  });
  // And a listener for the whole life of every connection: between the
  // pool handing a client out (it drops its idle listener then) and
  // withTransaction adding its own, a FATAL that arrived in the same read as
  // ReadyForQuery is emitted with no listener at all, and that ended the
  // aggregator during start-up migrations under pg_terminate_backend
  // (test/db/startup-termination.test.ts, once, on a loaded machine). The
  // client is dead either way; its next query rejects, which withTransaction
  // classifies as DB_UNAVAILABLE.
  pool.on("connect", (client) => {
    client.on("error", () => undefined);
  });
  return pool;
}

/**
 * Ends the pool: idle connections close at once, checked-out ones as their
 * transactions end; waits for that at most timeoutMs.
 */
export async function closeTxPool(pool: TxPool, timeoutMs = 5_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await Promise.race([pool.end(), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
