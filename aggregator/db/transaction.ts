// withTransaction(pool, async (tx) => { … }): a PostgreSQL transaction with
// TypeScript between its statements — read state, decide, write state,
// commit — that never takes the process down when the connection dies, at
// any point: before BEGIN, between statements, or during COMMIT.
//
//   const cursor = await withTransaction(pool, async (tx) => {
//     const [row] = await tx.query<{ seq: bigint }>(
//       "SELECT seq FROM incident_cursors WHERE agent_id = $1 FOR UPDATE", [agent]);
//     …decide in TypeScript…
//     await tx.execute("UPDATE incident_cursors SET seq = $2 WHERE agent_id = $1", [agent, next]);
//     return next;
//   }, { name: "incident cursor", isolation: "serializable", attempts: 3 });
//
// Failures arrive as TransactionError (tx-errors.ts) with a code that says
// what to do; an error thrown by the callback itself comes back unchanged,
// after the rollback. test/db/transaction.test.ts kills the backend at each
// point against a real PostgreSQL; aggregator/db/transaction.test.ts pins the
// protocol (statement order, release, retries).
import { Backoff, type BackoffOptions } from "../../shared/backoff.ts";
import { TransactionError, classifyTxError, isTransactionError } from "./tx-errors.ts";

export type Isolation = "read committed" | "repeatable read" | "serializable";

export type Row = Record<string, unknown>;

/** The handle a transaction's callback gets. Valid only until the callback's promise settles. */
export interface Tx {
  /** One statement with $1, $2… parameters; its rows. */
  query<R extends Row = Row>(text: string, values?: readonly unknown[]): Promise<R[]>;
  /** One statement; the number of rows it inserted, updated or deleted. */
  execute(text: string, values?: readonly unknown[]): Promise<number>;
}

/** What withTransaction needs of a node-postgres client (a fake in unit tests). */
export interface TxClient {
  query(text: string, values?: unknown[]): Promise<{ rows: Row[]; rowCount: number | null; command: string }>;
  on(event: "error", listener: (err: Error) => void): unknown;
  removeListener(event: "error", listener: (err: Error) => void): unknown;
  /** With an error: the connection is closed rather than pooled. */
  release(err?: Error | boolean): void;
}

/** pg.Pool (tx-pool.ts), or a fake. */
export interface TxConnector {
  connect(): Promise<TxClient>;
}

export interface TransactionOptions {
  /** Names the transaction in error messages ("rollup", "incident cursor"). */
  name?: string;
  /** Default: PostgreSQL's (read committed). */
  isolation?: Isolation;
  readOnly?: boolean;
  /**
   * Runs of the callback in all. It runs again only after DB_CONFLICT or
   * DB_UNAVAILABLE, when nothing was committed; so a callback that is re-run
   * must keep its effects inside the transaction. Default 1.
   */
  attempts?: number;
  /** Between attempts; default RETRY_BACKOFF. */
  backoff?: Partial<BackoffOptions>;
  /** Aborting stops further attempts (shutdown). */
  signal?: AbortSignal;
}

/**
 * Conflicts clear as soon as the other transaction ends (milliseconds), and a
 * lost connection is either back within a second or down for longer than a
 * few retries should wait: start short, stay short.
 */
export const RETRY_BACKOFF: BackoffOptions = { initialMs: 50, maxMs: 2_000, factor: 3, jitter: 0.5 };

const BEGIN: Record<Isolation, string> = {
  "read committed": "BEGIN ISOLATION LEVEL READ COMMITTED",
  "repeatable read": "BEGIN ISOLATION LEVEL REPEATABLE READ",
  serializable: "BEGIN ISOLATION LEVEL SERIALIZABLE",
};

export async function withTransaction<T>(
  pool: TxConnector,
  fn: (tx: Tx) => Promise<T>,
  opts: TransactionOptions = {},
): Promise<T> {
  const attempts = opts.attempts ?? 1;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(`withTransaction: attempts must be a positive integer, not ${attempts}`);
  }
  const backoff = new Backoff({ ...RETRY_BACKOFF, ...opts.backoff });
  for (let n = 1; ; n++) {
    try {
      return await once(pool, fn, opts);
    } catch (err) {
      const again = isTransactionError(err, "DB_CONFLICT") || isTransactionError(err, "DB_UNAVAILABLE");
      if (!again || n >= attempts || opts.signal?.aborted === true) throw err;
      if (!(await backoff.sleep(opts.signal))) throw err;
    }
  }
}

/** The start of a statement, for messages: "SELECT seq FROM incident_cursors…". */
function label(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 48 ? `${flat.slice(0, 48)}…` : flat;
}

async function once<T>(pool: TxConnector, fn: (tx: Tx) => Promise<T>, opts: TransactionOptions): Promise<T> {
  const name = opts.name ?? "transaction";
  let client: TxClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw classifyTxError(err, `${name}: connecting`);
  }
  // node-postgres emits 'error' on a client whose connection dies; with no
  // listener Node would throw it from the socket's event and end the process.
  // The pool listens only while a client is idle, so this listens while it is ours.
  let lost: Error | null = null;
  const onError = (err: Error): void => {
    lost ??= err;
  };
  client.on("error", onError);
  /** The connection must not go back to the pool (lost, or in an unknown state). */
  let broken = false;
  let ended = false;

  const run = async (text: string, values?: readonly unknown[], commit = false) => {
    try {
      return await client.query(text, values === undefined ? undefined : [...values]);
    } catch (err) {
      const e = classifyTxError(err, `${name}: ${label(text)}`, commit);
      if (e.code === "DB_UNAVAILABLE" || e.code === "DB_COMMIT_UNKNOWN") broken = true;
      throw e;
    }
  };
  const open = (): void => {
    if (ended)
      throw new Error(`${name}: statement after the transaction ended (a query the callback did not await?)`);
  };
  const tx: Tx = {
    async query<R extends Row = Row>(text: string, values?: readonly unknown[]) {
      open();
      return (await run(text, values)).rows as R[];
    },
    async execute(text: string, values?: readonly unknown[]) {
      open();
      return (await run(text, values)).rowCount ?? 0;
    },
  };

  try {
    await run(`${BEGIN[opts.isolation ?? "read committed"]}${opts.readOnly === true ? " READ ONLY" : ""}`);
    let result: T;
    try {
      result = await fn(tx);
    } catch (err) {
      ended = true;
      // A lost session is rolled back by the server; only a live one needs ROLLBACK.
      if (!broken && lost === null) {
        try {
          await client.query("ROLLBACK");
        } catch {
          broken = true;
        }
      }
      throw err;
    }
    ended = true;
    if (broken || lost !== null) {
      // The callback caught a lost connection's error and returned anyway:
      // COMMIT was never sent, and the server has rolled back.
      throw new TransactionError("DB_UNAVAILABLE", `${name}: connection lost before COMMIT`, { cause: lost });
    }
    const done = await run("COMMIT", undefined, true);
    if (done.command !== "COMMIT") {
      // PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK and
      // no error: a statement failed and the callback caught it and went on.
      throw new TransactionError(
        "DB_REJECTED",
        `${name}: rolled back at COMMIT (PostgreSQL answered ${done.command}): a statement failed earlier and the callback went on`,
      );
    }
    return result;
  } finally {
    ended = true;
    // The pool puts its own 'error' listener back before anything else.
    client.release(
      broken || lost !== null ? (lost ?? new Error(`${name}: connection discarded`)) : undefined,
    );
    client.removeListener("error", onError);
  }
}
