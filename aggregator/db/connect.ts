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
  /** Per-statement limit; default STATEMENT_TIMEOUT_MS. */
  statementTimeoutMs?: number;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
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
 * A batch is one statement over a few thousand rows and commits in
 * milliseconds; one that takes longer than this is stuck (a lock queue, a
 * dying disk). Failing it lets the agent resend, and it bounds how long a
 * stamped-but-uncommitted row can stay invisible to the rollup
 * (aggregator/db/rollup.ts ROLLUP_SETTLE_SECONDS).
 */
export const STATEMENT_TIMEOUT_MS = 30_000;
/**
 * The maintenance pool's limit: a first rollup over a large history or a
 * partition move may scan for minutes, and it is not a stuck batch.
 */
export const MAINTENANCE_STATEMENT_TIMEOUT_MS = 600_000;

function createSql(opts: DatabaseOptions) {
  const connectTimeout = opts.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS;
  return postgres(opts.url.reveal(), {
    max: opts.poolSize,
    idle_timeout: IDLE_TIMEOUT_SECONDS,
    connect_timeout: connectTimeout,
    types: { bigint: postgres.BigInt },
    connection: {
      statement_timeout: opts.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS,
      idle_in_transaction_session_timeout: STATEMENT_TIMEOUT_MS,
      application_name: opts.applicationName ?? "smbfleet-aggregator",
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
}

/**
 * postgres.js does not set TCP_NODELAY; with Nagle on, every COPY stalls on a
 * delayed ACK (~44 ms twice, 19k → 98k rows/s without it; FACTS.md).
 * The socket is returned at once, still connecting: postgres.js writes its
 * startup message straight away (net.Socket queues it until connected), and
 * it must never find itself without a socket while a connection is being made
 * (an async factory left one, and its queued writes crashed on null). Its
 * connect_timeout covers the TCP connect too, since it runs until the first
 * ReadyForQuery.
 */
function noDelaySocket(options: SocketTarget): Socket {
  if (typeof options.path === "string" && options.path !== "") return connect({ path: options.path });
  return connect({ host: options.host?.[0] ?? "127.0.0.1", port: options.port?.[0] ?? 5432, noDelay: true });
}

/** Ends the pool, waiting at most timeoutSeconds for running queries. */
export async function closeDatabase(sql: Db, timeoutSeconds = 5): Promise<void> {
  await sql.end({ timeout: timeoutSeconds });
}
