// Exactly once, per result: the (agent, seq) pairs PostgreSQL holds against
// the pairs the simulated agents produced (seqs 1..n per agent). A count of
// rows alone would let one loss and one duplicate cancel out.
import type { Sql } from "../../test/harness/fleet.ts";

export interface StoredCheck {
  produced: number;
  /** Rows in results and quarantined_results for these agents. */
  rows: number;
  quarantined: number;
  /** Produced pairs with no row. */
  missing: number;
  /** Rows beyond the first for a produced pair. */
  duplicated: number;
  /** Rows for pairs never produced (unknown agent, seq out of range). */
  unexpected: number;
}

export async function checkStored(sql: Sql, producedByAgent: Record<string, number>): Promise<StoredCheck> {
  const agents = Object.keys(producedByAgent);
  const rows = await sql<{ agent: string; seq: number; n: number }[]>`
    SELECT agent_id AS agent, seq::int AS seq, count(*)::int AS n
    FROM results WHERE agent_id = ANY(${agents}) GROUP BY 1, 2`;
  const [q] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM quarantined_results WHERE agent_id = ANY(${agents})`;
  let produced = 0;
  for (const n of Object.values(producedByAgent)) produced += n;
  let present = 0;
  let duplicated = 0;
  let unexpected = 0;
  let total = 0;
  for (const r of rows) {
    total += r.n;
    const last = producedByAgent[r.agent];
    if (last === undefined || r.seq < 1 || r.seq > last) {
      unexpected += r.n;
      continue;
    }
    present += 1;
    duplicated += r.n - 1;
  }
  const quarantined = q?.n ?? 0;
  return {
    produced,
    rows: total + quarantined,
    quarantined,
    missing: produced - present,
    duplicated,
    unexpected,
  };
}
