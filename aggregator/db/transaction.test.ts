// The contract of withTransaction against a scripted client: which statements
// it sends in which order, what it does with the connection afterwards, and
// which failures it re-runs. The same paths against a real PostgreSQL whose
// backend is terminated: test/db/transaction.test.ts.
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import type { TxClient, TxConnector } from "./transaction.ts";
import { withTransaction } from "./transaction.ts";
import { isTransactionError, type TransactionError } from "./tx-errors.ts";

type Answer = { rows?: Record<string, unknown>[]; rowCount?: number; command?: string } | Error;

/** A client that answers each statement from `script` (by its first word, or exact text) and records what it got. */
class FakeClient extends EventEmitter implements TxClient {
  readonly sent: string[] = [];
  readonly released: (Error | boolean | undefined)[] = [];
  readonly script: (text: string) => Answer | undefined;
  constructor(script: (text: string) => Answer | undefined = () => undefined) {
    super();
    this.script = script;
  }
  async query(text: string) {
    this.sent.push(text);
    await Promise.resolve();
    const a = this.script(text);
    if (a instanceof Error) throw a;
    const command = a?.command ?? text.split(" ")[0]!.toUpperCase();
    return { rows: a?.rows ?? [], rowCount: a?.rowCount ?? 0, command };
  }
  release(err?: Error | boolean) {
    this.released.push(err);
  }
}

function pool(...clients: FakeClient[]): TxConnector & { handed: number } {
  const p = {
    handed: 0,
    connect() {
      const c = clients[p.handed++];
      return c === undefined ? Promise.reject(new Error("no more clients")) : Promise.resolve(c);
    },
  };
  return p;
}

const pgError = (code: string, message: string): Error => Object.assign(new Error(message), { code });
const fast = { initialMs: 1, maxMs: 1 };

describe("withTransaction", () => {
  it("runs BEGIN, the callback's statements, COMMIT, and returns the connection to the pool", async () => {
    const c = new FakeClient((t) => (t.startsWith("SELECT") ? { rows: [{ n: 1n }] } : { rowCount: 3 }));
    const out = await withTransaction(
      pool(c),
      async (tx) => {
        const [row] = await tx.query<{ n: bigint }>("SELECT n FROM t WHERE id = $1 FOR UPDATE", [7]);
        return { n: row?.n, changed: await tx.execute("UPDATE t SET n = n + 1") };
      },
      { isolation: "serializable" },
    );
    expect(out).toEqual({ n: 1n, changed: 3 });
    expect(c.sent).toEqual([
      "BEGIN ISOLATION LEVEL SERIALIZABLE",
      "SELECT n FROM t WHERE id = $1 FOR UPDATE",
      "UPDATE t SET n = n + 1",
      "COMMIT",
    ]);
    expect(c.released).toEqual([undefined]);
    expect(c.listenerCount("error")).toBe(0);
  });

  it("rolls back and rethrows the callback's own error unchanged", async () => {
    const c = new FakeClient();
    const mine = new Error("decided against it");
    await expect(
      withTransaction(pool(c), async (tx) => {
        await tx.execute("INSERT INTO t VALUES (1)");
        throw mine;
      }),
    ).rejects.toBe(mine);
    expect(c.sent).toEqual(["BEGIN ISOLATION LEVEL READ COMMITTED", "INSERT INTO t VALUES (1)", "ROLLBACK"]);
    expect(c.released).toEqual([undefined]);
  });

  it("survives the connection's 'error' event while the callback runs, and discards the connection", async () => {
    const c = new FakeClient((t) =>
      t === "SELECT 2"
        ? new Error("Client has encountered a connection error and is not queryable")
        : undefined,
    );
    const err = await withTransaction(pool(c), async (tx) => {
      await tx.query("SELECT 1");
      // The backend dies between statements: node-postgres emits on the client.
      c.emit("error", pgError("57P01", "terminating connection due to administrator command"));
      await tx.query("SELECT 2");
    }).catch((e: unknown) => e);
    expect(isTransactionError(err, "DB_UNAVAILABLE")).toBe(true);
    expect((err as TransactionError).transient).toBe(true);
    // No ROLLBACK on a dead session, and the client is released with the error (closed, not pooled).
    expect(c.sent).not.toContain("ROLLBACK");
    expect(c.released[0]).toBeInstanceOf(Error);
    expect(c.listenerCount("error")).toBe(0);
  });

  it("never sends COMMIT when the callback swallowed a lost connection's error", async () => {
    const c = new FakeClient((t) =>
      t === "SELECT 1" ? new Error("Connection terminated unexpectedly") : undefined,
    );
    const err = await withTransaction(pool(c), async (tx) => {
      await tx.query("SELECT 1").catch(() => undefined);
      return "done anyway";
    }).catch((e: unknown) => e);
    expect(isTransactionError(err, "DB_UNAVAILABLE")).toBe(true);
    expect(c.sent).not.toContain("COMMIT");
  });

  it("reports a connection lost during COMMIT as DB_COMMIT_UNKNOWN, and never re-runs it", async () => {
    const c = new FakeClient((t) =>
      t === "COMMIT" ? new Error("Connection terminated unexpectedly") : undefined,
    );
    const p = pool(c, new FakeClient());
    let runs = 0;
    const err = await withTransaction(
      p,
      async (tx) => {
        runs++;
        await tx.execute("UPDATE t SET n = 1");
      },
      { attempts: 3, backoff: fast },
    ).catch((e: unknown) => e);
    expect(isTransactionError(err, "DB_COMMIT_UNKNOWN")).toBe(true);
    expect((err as TransactionError).transient).toBe(true);
    expect(runs).toBe(1);
    expect(c.released[0]).toBeInstanceOf(Error);
  });

  it("reports COMMIT answered with ROLLBACK (an error the callback caught) as DB_REJECTED", async () => {
    const c = new FakeClient((t) =>
      t === "INSERT"
        ? pgError("23505", "duplicate key")
        : t === "COMMIT"
          ? { command: "ROLLBACK" }
          : undefined,
    );
    const err = await withTransaction(pool(c), async (tx) => {
      await tx.execute("INSERT").catch(() => undefined);
    }).catch((e: unknown) => e);
    expect(isTransactionError(err, "DB_REJECTED")).toBe(true);
    expect((err as TransactionError).transient).toBe(false);
    // The connection itself is fine.
    expect(c.released).toEqual([undefined]);
  });

  it("re-runs the callback after a serialization failure, up to `attempts`", async () => {
    const conflict = () =>
      new FakeClient((t) => (t === "COMMIT" ? pgError("40001", "could not serialize") : undefined));
    const p = pool(conflict(), conflict(), new FakeClient());
    let runs = 0;
    const out = await withTransaction(
      p,
      async (tx) => {
        runs++;
        await tx.query("SELECT 1");
        return runs;
      },
      { attempts: 3, backoff: fast, isolation: "serializable" },
    );
    expect(out).toBe(3);

    const always = pool(conflict(), conflict());
    const err = await withTransaction(always, (tx) => tx.query("SELECT 1"), {
      attempts: 2,
      backoff: fast,
    }).catch((e: unknown) => e);
    expect(isTransactionError(err, "DB_CONFLICT")).toBe(true);
    expect((err as TransactionError).sqlState).toBe("40001");
    expect(always.handed).toBe(2);
  });

  it("re-runs after no connection could be had, but not after the callback's own error or a rejection", async () => {
    const refused = {
      tries: 0,
      connect() {
        this.tries++;
        return this.tries < 3
          ? Promise.reject(pgError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"))
          : Promise.resolve(new FakeClient());
      },
    };
    expect(await withTransaction(refused, () => Promise.resolve("ok"), { attempts: 3, backoff: fast })).toBe(
      "ok",
    );

    let runs = 0;
    const mine = new Error("bug");
    await expect(
      withTransaction(
        pool(new FakeClient(), new FakeClient()),
        () => {
          runs++;
          return Promise.reject(mine);
        },
        { attempts: 3, backoff: fast },
      ),
    ).rejects.toBe(mine);
    const rejected = new FakeClient((t) =>
      t.startsWith("INSERT") ? pgError("23514", "check violation") : undefined,
    );
    const err = await withTransaction(pool(rejected, new FakeClient()), (tx) => tx.execute("INSERT 1"), {
      attempts: 3,
      backoff: fast,
    }).catch((e: unknown) => e);
    expect(isTransactionError(err, "DB_REJECTED")).toBe(true);
    expect(runs).toBe(1);
  });

  it("refuses statements once the transaction has ended", async () => {
    let leaked: { query(t: string): Promise<unknown> } | null = null;
    await withTransaction(pool(new FakeClient()), (tx) => {
      leaked = tx;
      return Promise.resolve();
    });
    await expect(leaked!.query("SELECT 1")).rejects.toThrow(/after the transaction ended/);
  });

  it("stops retrying when the signal aborts", async () => {
    const ac = new AbortController();
    const conflict = new FakeClient((t) =>
      t === "COMMIT" ? pgError("40P01", "deadlock detected") : undefined,
    );
    const err = await withTransaction(
      pool(conflict, new FakeClient()),
      async (tx) => {
        await tx.query("SELECT 1");
        ac.abort();
      },
      { attempts: 5, signal: ac.signal },
    ).catch((e: unknown) => e);
    expect(isTransactionError(err, "DB_CONFLICT")).toBe(true);
  });
});
