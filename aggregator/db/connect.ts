// The aggregator's PostgreSQL pool (postgres.js). Two things differ from the
// library's defaults, both measured (see FACTS.md and docs/benchmarks.md):
// sockets are created with TCP_NODELAY, and int8 columns come back as bigint
// so that sequence numbers compare exactly with the protobuf uint64 fields.
import { connect, type Socket } from "node:net";
import postgres from "postgres";
import type { Logger } from "../../shared/logger.ts";
import type { Secret } from "../../shared/secret.ts";

export interface DatabaseOptions {
  url: Secret;
  /** Connections in the pool; one per concurrently committing batch. */
  poolSize: number;
  logger?: Logger;
  /** Overrides for tests (e.g. a short connect timeout). */
  connectTimeoutSeconds?: number;
}

/**
 * A TCP connect that hangs (a firewalled database) would otherwise hold a
 * batch for the kernel's SYN timeout (~2 min); 10 s is ample on any LAN.
 */
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;
/**
 * Idle pooled connections are closed after this long so that a restarted or
 * failed-over database is reached by fresh connections rather than stale ones.
 */
const IDLE_TIMEOUT_SECONDS = 60;
/**
 * A batch transaction is a handful of statements over a few thousand rows and
 * commits in milliseconds; one that takes longer than this is stuck (a lock
 * queue, a dying disk). Failing it lets the agent resend, and it bounds how
 * long a stamped-but-uncommitted row can stay invisible to the rollup
 * (aggregator/db/rollup.ts ROLLUP_SETTLE_SECONDS). Long maintenance and
 * migration statements raise it for their own transaction.
 */
export const STATEMENT_TIMEOUT_MS = 30_000;

function createSql(opts: DatabaseOptions) {
  const connectTimeout = opts.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS;
  return postgres(opts.url.reveal(), {
    max: opts.poolSize,
    idle_timeout: IDLE_TIMEOUT_SECONDS,
    connect_timeout: connectTimeout,
    types: { bigint: postgres.BigInt },
    connection: {
      statement_timeout: STATEMENT_TIMEOUT_MS,
      idle_in_transaction_session_timeout: STATEMENT_TIMEOUT_MS,
      application_name: "smbfleet-aggregator",
    },
    onnotice: (notice) => opts.logger?.debug({ notice: notice["message"] }, "postgres notice"),
    // Not in postgres.js's type declarations, but supported (src/connection.js):
    // a function returning a connected socket.
    ...({ socket: noDelaySocket } as object),
  });
}

export type Db = ReturnType<typeof createSql>;
/** The handle inside sql.begin(). */
export type Tx = postgres.TransactionSql<{ bigint: bigint }>;

export function connectDatabase(opts: DatabaseOptions): Db {
  return createSql(opts);
}

/** The parsed options postgres.js hands to the socket factory. */
interface SocketTarget {
  host?: string[];
  port?: number[];
  path?: string | false;
  connect_timeout?: number;
}

/**
 * postgres.js does not set TCP_NODELAY; with Nagle on, every COPY stalls on a
 * delayed ACK (~44 ms twice, 19k → 98k rows/s without it; FACTS.md).
 */
function noDelaySocket(options: SocketTarget): Promise<Socket> {
  const timeoutSeconds = options.connect_timeout ?? DEFAULT_CONNECT_TIMEOUT_SECONDS;
  return new Promise((resolve, reject) => {
    const socket =
      typeof options.path === "string" && options.path !== ""
        ? connect({ path: options.path })
        : connect({ host: options.host?.[0] ?? "127.0.0.1", port: options.port?.[0] ?? 5432, noDelay: true });
    // postgres.js starts its own connect timer only once it has the socket.
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to PostgreSQL timed out after ${timeoutSeconds} s`));
    }, timeoutSeconds * 1000);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

/** Ends the pool, waiting at most timeoutSeconds for running queries. */
export async function closeDatabase(sql: Db, timeoutSeconds = 5): Promise<void> {
  await sql.end({ timeout: timeoutSeconds });
}
