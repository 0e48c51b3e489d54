// What a failed transaction means for its caller, in one table: retry it
// (transient), or stop and say why (fatal). Callers branch on the code,
// never on a message. The SQLSTATE classes are PostgreSQL's (Appendix A of
// its manual); the message texts are node-postgres's, which sets no code on
// the errors it makes itself.
import { SmbfleetError, type ErrorCode } from "../../shared/errors.ts";

export type TxErrorCode = Extract<
  ErrorCode,
  "DB_UNAVAILABLE" | "DB_CONFLICT" | "DB_COMMIT_UNKNOWN" | "DB_REJECTED"
>;

/**
 * DB_UNAVAILABLE     transient  no connection, or it was lost before COMMIT was sent: nothing committed.
 * DB_CONFLICT        transient  serialization failure, deadlock or lock timeout: rolled back, run it again.
 * DB_COMMIT_UNKNOWN  transient  the connection was lost after COMMIT was sent: it may have committed.
 *                               Never re-run blindly; a retry must re-read the state it decides on.
 * DB_REJECTED        fatal      the database refused a statement (constraint, syntax, permission), or
 *                               the transaction was already aborted when COMMIT came: retrying repeats it.
 */
export class TransactionError extends SmbfleetError {
  declare readonly code: TxErrorCode;
  /** True when running the transaction again may succeed. */
  readonly transient: boolean;
  /** PostgreSQL's SQLSTATE, when the server sent one. */
  readonly sqlState: string | undefined;

  constructor(code: TxErrorCode, message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super(code, message, { cause: options.cause });
    this.name = "TransactionError";
    this.transient = code !== "DB_REJECTED";
    this.sqlState = options.sqlState;
  }
}

export function isTransactionError(err: unknown, code?: TxErrorCode): err is TransactionError {
  return err instanceof TransactionError && (code === undefined || err.code === code);
}

/** SQLSTATEs (exact) that mean "run it again". */
const CONFLICT_STATES = new Set([
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "55P03", // lock_not_available (lock_timeout, NOWAIT)
]);

/** SQLSTATE classes and codes that mean the server or the connection is going or gone. */
const UNAVAILABLE_CLASSES = new Set([
  "08", // connection exception
  "53", // insufficient resources (too many connections, out of memory, disk full)
  "57", // operator intervention: admin/crash shutdown, cannot connect now, query canceled (statement_timeout)
  "58", // system error (I/O)
]);

/** Node's socket errors: the connection could not be made or was cut. */
const SOCKET_CODES =
  /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/;

/**
 * node-postgres's own errors carry no code, only these messages (pg 8.23:
 * lib/client.js, pg-pool/index.js). Pinned by aggregator/db/tx-errors.test.ts
 * against the installed version's sources, so an upgrade that rewords them fails there.
 */
export const PG_CONNECTION_MESSAGES = [
  "Connection terminated unexpectedly",
  "Connection terminated",
  "Client has encountered a connection error and is not queryable",
  "Client was closed and is not queryable",
  "Query read timeout",
  "timeout exceeded when trying to connect",
  "Connection terminated due to connection timeout",
] as const;

/** node-postgres refuses a statement with these before writing it: a COMMIT refused so never reached the server. */
const NOT_SENT_MESSAGES: readonly string[] = [
  "Client has encountered a connection error and is not queryable",
  "Client was closed and is not queryable",
];

function connectionLost(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && SOCKET_CODES.test(code)) return true;
  return (PG_CONNECTION_MESSAGES as readonly string[]).includes(err.message);
}

function sqlStateOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * The classified error for a statement of a transaction that failed.
 * `commitSent`: the failure came after COMMIT was written, so a lost
 * connection leaves the outcome unknown.
 */
export function classifyTxError(err: unknown, context: string, commitSent = false): TransactionError {
  if (err instanceof TransactionError) return err;
  const sqlState = sqlStateOf(err);
  const message = `${context}: ${err instanceof Error ? err.message : String(err)}`;
  const opts = sqlState === undefined ? { cause: err } : { cause: err, sqlState };
  if (sqlState !== undefined && CONFLICT_STATES.has(sqlState))
    return new TransactionError("DB_CONFLICT", message, opts);
  const lost =
    connectionLost(err) ||
    (sqlState !== undefined && UNAVAILABLE_CLASSES.has(sqlState.slice(0, 2)) && sqlState !== "57014");
  if (lost) {
    const unknown = commitSent && !(err instanceof Error && NOT_SENT_MESSAGES.includes(err.message));
    return new TransactionError(unknown ? "DB_COMMIT_UNKNOWN" : "DB_UNAVAILABLE", message, opts);
  }
  // statement_timeout (57014) ends the statement, not the connection: the
  // server answered, so even at COMMIT the outcome is known (rolled back).
  if (sqlState === "57014") return new TransactionError("DB_UNAVAILABLE", message, opts);
  return new TransactionError("DB_REJECTED", message, opts);
}
