// The database drivers can reject a promise that nobody holds when a
// connection dies in the middle of an exchange: postgres.js 3.4.9 and
// node-postgres each have such paths, and under pg_terminate_backend one
// surfaced as a bare `read ECONNRESET` that ended the aggregator
// (test/db/startup-termination.test.ts, once, on a loaded machine). Losing
// PostgreSQL must never end the aggregator: a connection-level error that
// reaches the process unhandled is logged and counted, and the next query
// meets a fresh connection. Anything else still ends the process, as Node
// would end it.
import { errorMessage } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";

/** Socket errors, postgres.js's connection codes, and PostgreSQL's "connection ended by the server" class 57P. */
const CONNECTION_LOSS_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
  "57P01", // admin_shutdown: pg_terminate_backend, or the server stopping
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
]);

/** Whether err is a lost or refused database connection, and nothing else. */
export function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" && CONNECTION_LOSS_CODES.has(code);
}

/**
 * While installed, an unhandled rejection that is a connection loss is
 * logged (and told to onLoss) instead of ending the process; any other is
 * thrown on, which ends the process as it would have. Returns the uninstaller.
 */
export function guardConnectionLoss(logger: Logger, onLoss: () => void = () => {}): () => void {
  const handler = (reason: unknown): void => {
    if (!isConnectionLoss(reason)) throw reason;
    onLoss();
    logger.error(
      { err: errorMessage(reason), code: (reason as { code: string }).code },
      "a database connection was lost with nobody waiting on it; carrying on",
    );
  };
  process.on("unhandledRejection", handler);
  return () => process.off("unhandledRejection", handler);
}
