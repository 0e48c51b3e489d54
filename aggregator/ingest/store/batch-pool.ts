// Batches are stored on a connection pool of their own, and never more of
// them at once than that pool has connections.
//
// Why: a batch is one COPY (copy-batch.ts). When every connection of a
// postgres.js pool is busy, the next query is pipelined onto a busy one; a
// query written onto a connection that is in COPY mode makes PostgreSQL end
// it ("protocol synchronization was lost"), and the batch on it fails with
// EPIPE/ECONNRESET. With 150 agents on one aggregator that happened to most
// batches (test/fleet/many-agents.test.ts). Holding a slot per connection
// means a batch always finds an idle connection, and nothing else (Hello,
// Heartbeat, disconnects) shares this pool.
import type { Db } from "../../db/connect.ts";

export class BatchPool {
  readonly sql: Db;
  #free: number;
  readonly #waiting: (() => void)[] = [];

  /** `connections` must be the pool size `sql` was created with. */
  constructor(sql: Db, connections: number) {
    if (!Number.isInteger(connections) || connections < 1) {
      throw new RangeError(`BatchPool: connections must be a positive integer, not ${connections}`);
    }
    this.sql = sql;
    this.#free = connections;
  }

  /** Runs fn with a connection slot held; fn's queries must run one after another. */
  async run<T>(fn: (sql: Db) => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn(this.sql);
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#free++;
    }
  }

  /** Batches waiting for a slot (for tests and metrics). */
  get waiting(): number {
    return this.#waiting.length;
  }
}
