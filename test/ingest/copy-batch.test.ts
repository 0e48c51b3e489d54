// The COPY path of ingest (aggregator/ingest/store/copy-batch.ts) against a real
// PostgreSQL, through each way postgres.js 3.4.9 mishandles COPY: an error
// after CopyDone (#1173) must reject, never hang and never look like success;
// a backend killed mid-COPY must reject and leave the process and the pool
// alive (#1208 crashes the process on a dead reserved connection). After
// every failure nothing of the batch is stored and the high-water mark has
// not moved.
import postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { closeDatabase, connectDatabase, type Db } from "../../aggregator/db/connect.ts";
import { migrateUrl } from "../../aggregator/db/migrate.ts";
import { copyBatch, type CopyBatchInput } from "../../aggregator/ingest/store/copy-batch.ts";
import { Secret } from "../../shared/secret.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { until } from "../harness/wait.ts";

let pg: RunningPostgres;
let url: string;
/** One connection, so that a query after a failed COPY reuses that very connection. */
let sql: Db;
/** A second client playing an operator. */
let other: Db;

const STARTED = "2026-01-05T10:00:00.000Z";
const OPS = `[{"operation":"login","samples_ms":[1.5],"failures":0}]`;

/** COPY lines for seqs first..last (COPY_COLUMNS order). */
function lines(agent: string, first: number, last: number, started = STARTED): string {
  let text = "";
  for (let seq = first; seq <= last; seq++) {
    text += `${seq}\t${started}\t12.5\tt\t\\N\t\\N\t${OPS}\t{}\tf\t1\tparis\t${agent}\t${STARTED}\n`;
  }
  return text;
}

/** copyBatch of seqs first..last as valid rows (or `text` as given), plus `quarantine`. */
function copy(
  agent: string,
  first: number,
  last: number,
  o: { text?: string; quarantine?: CopyBatchInput["quarantine"] } = {},
) {
  const quarantined = new Set((o.quarantine ?? []).map((q) => Number(q.seq)));
  let text = "";
  let rowCount = 0;
  for (let seq = first; seq <= last; seq++) {
    if (quarantined.has(seq)) continue;
    text += lines(agent, seq, seq);
    rowCount += 1;
  }
  return copyBatch(sql, {
    site: "paris",
    agent,
    first: BigInt(first),
    last: BigInt(last),
    receivedAt: new Date(STARTED),
    text: o.text ?? text,
    rowCount,
    quarantine: o.quarantine ?? [],
  });
}

async function state(agent: string, db: Db = sql): Promise<{ hw: bigint; seqs: bigint[] }> {
  const hw = await db`SELECT high_water_seq FROM agents WHERE agent_id = ${agent}`;
  const rows = await db`SELECT seq FROM results WHERE agent_id = ${agent} ORDER BY seq`;
  return { hw: hw[0]?.["high_water_seq"] as bigint, seqs: rows.map((r) => r["seq"] as bigint) };
}

beforeAll(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase("copy_batch");
  sql = connectDatabase({ url: new Secret(url), poolSize: 1, applicationName: "copy-batch-test" });
  await migrateUrl(new Secret(url));
  await sql`INSERT INTO sites (site) VALUES ('paris')`;
  // Target id 1 for every line.
  await sql`INSERT INTO targets (site, address, port, domain, share, basedir, name)
            VALUES ('paris', '10.0.0.1', 445, 'CORP', 's', '.', 's')`;
  other = connectDatabase({ url: new Secret(url), poolSize: 1 });
});
afterAll(async () => {
  if (other !== undefined) await closeDatabase(other);
  if (sql !== undefined) await closeDatabase(sql);
  await pg?.stop();
});

let n = 0;
let agent = "";
beforeEach(async () => {
  agent = `a-${++n}`;
  await sql`INSERT INTO agents (agent_id, site) VALUES (${agent}, 'paris')`;
});

describe("copyBatch", () => {
  it("commits the rows and the high-water mark together and reports it only after the commit", async () => {
    const out = await copy(agent, 1, 3);
    expect(out).toEqual({ kind: "committed" });
    // Visible from another connection the moment copyBatch resolved: committed, not just copied.
    const seen = await other`SELECT count(*)::int AS n FROM results WHERE agent_id = ${agent}`;
    expect(seen[0]?.["n"]).toBe(3);
    expect(await state(agent)).toEqual({ hw: 3n, seqs: [1n, 2n, 3n] });
  });

  it("refuses, writing nothing, a batch not above the high-water mark or of a disabled agent", async () => {
    await copy(agent, 1, 2);
    const quarantine = [{ seq: 4n, reason: "x", raw: new Uint8Array([1]) }];
    expect(await copy(agent, 2, 4, { quarantine })).toEqual({
      kind: "refused",
      why: "below-high-water",
      reason: `batch 2-4 of agent ${agent} is not above its high-water mark 2`,
    });
    await sql`UPDATE agents SET disabled = true WHERE agent_id = ${agent}`;
    expect(await copy(agent, 3, 3)).toEqual({
      kind: "refused",
      why: "disabled",
      reason: `agent ${agent} is disabled or not registered`,
    });
    expect(await copy("nobody", 1, 1)).toMatchObject({ kind: "refused", why: "disabled" });
    expect(await state(agent)).toEqual({ hw: 2n, seqs: [1n, 2n] });
    const q = await sql`SELECT count(*)::int AS n FROM quarantined_results WHERE agent_id = ${agent}`;
    expect(q[0]?.["n"]).toBe(0);
  });

  it("quarantines in the same transaction, free text and bytes exactly as given", async () => {
    const reason = "results[1].failure_message: it's a \\ 'quote', a tab\t and ünïcode";
    const raw = new Uint8Array([0, 39, 92, 255, 10]);
    const quarantine = [
      { seq: 2n, reason, raw },
      { seq: 4n, reason: "second", raw: new Uint8Array([7]) },
    ];
    expect(await copy(agent, 1, 4, { quarantine })).toEqual({ kind: "committed" });
    expect(await state(agent)).toEqual({ hw: 4n, seqs: [1n, 3n] });
    const rows = await sql`
      SELECT seq, reason, raw, site, received_at FROM quarantined_results WHERE agent_id = ${agent} ORDER BY seq`;
    expect(rows.map((r) => ({ ...r }))).toEqual([
      { seq: 2n, reason, raw: Buffer.from(raw), site: "paris", received_at: new Date(STARTED) },
      { seq: 4n, reason: "second", raw: Buffer.from([7]), site: "paris", received_at: new Date(STARTED) },
    ]);
  });

  it("rejects a COPY that fails after CopyDone, and the connection then serves the next batch", async () => {
    // A row with seq 5 already there (below no high-water mark): the COPY's
    // buffered insert meets it at the final flush, after CopyDone (#1173).
    await sql`INSERT INTO results (site, agent_id, seq, target_id, started_at, duration_ms, healthy,
                operations, late, received_at)
              VALUES ('paris', ${agent}, 5, 1, ${STARTED}, 1, true, '[]', false, now())`;
    await expect(copy(agent, 4, 6)).rejects.toMatchObject({
      code: "23505",
    });
    expect(await state(agent, other)).toEqual({ hw: 0n, seqs: [5n] });
    // Straight away on the same (only) connection, where postgres.js left the
    // failed COPY's end callback armed: it must not break this COPY.
    expect(await copy(agent, 6, 7)).toEqual({
      kind: "committed",
    });
    expect(await state(agent)).toEqual({ hw: 7n, seqs: [5n, 6n, 7n] });
  });

  it("rejects a COPY whose data PostgreSQL cannot parse, writing nothing", async () => {
    const text = lines(agent, 1, 2) + lines(agent, 3, 3, "not a time");
    await expect(copy(agent, 1, 3, { text })).rejects.toMatchObject({
      code: "22007",
    });
    expect(await state(agent)).toEqual({ hw: 0n, seqs: [] });
    expect((await copy(agent, 1, 1)).kind).toBe("committed");
  });

  it("rejects when the backend is terminated after CopyDone, and the process and pool carry on", async () => {
    // Another transaction holds an uncommitted row with the same key as seq 2:
    // our COPY's final flush waits on it, after CopyDone, until we kill our backend.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const rowHeld = new Promise<void>((resolve) => (inserted = resolve));
    const blocking = postgres(url, { max: 1, onnotice: () => {} });
    const blocker = blocking.begin(async (tx) => {
      await tx`INSERT INTO results (site, agent_id, seq, target_id, started_at, duration_ms, healthy,
                 operations, late, received_at)
               VALUES ('paris', ${agent}, 2, 1, ${STARTED}, 1, true, '[]', false, now())`;
      inserted();
      await held;
      throw new Error("roll back");
    });
    await rowHeld;
    const copying = copy(agent, 1, 3);
    // postgres.js reports the lost connection (PostgreSQL's FATAL 57P01 came just before it).
    const failed = expect(copying).rejects.toMatchObject({ code: "CONNECTION_CLOSED" });
    const pid = await until("the COPY's final flush to wait on the held row", async () => {
      const rows = await other`SELECT pid FROM pg_stat_activity
        WHERE application_name = 'copy-batch-test' AND wait_event_type = 'Lock'`;
      return rows[0]?.["pid"] as number | undefined;
    });
    await other`SELECT pg_terminate_backend(${pid})`;
    await failed;
    release();
    await expect(blocker).rejects.toThrow("roll back");
    await blocking.end({ timeout: 5 });
    expect(await state(agent, other)).toEqual({ hw: 0n, seqs: [] });
    // postgres.js keeps the killed backend's FATAL and fails the first query
    // of the reconnected connection with it (one batch not acked, resent);
    // the one after that is served.
    const again = () => copy(agent, 1, 3);
    const first = await again().catch((err: unknown) => err);
    if (!(first as { kind?: string }).kind) expect(first).toMatchObject({ code: "57P01" });
    const out = (first as { kind?: string }).kind ? first : await again();
    expect(out).toEqual({ kind: "committed" });
    expect(await state(agent)).toEqual({ hw: 3n, seqs: [1n, 2n, 3n] });
  });
});
