// "Zero lost, zero duplicated", checked the same way in every fault test: the
// rows PostgreSQL holds for an agent are exactly the results the agent
// committed to its buffer — the same seqs, each with the marker it was
// produced with, each once — and the agent's buffer is empty and dropped nothing.
import { expect } from "vitest";
import { storedResults, type Sql, type StoredResults } from "../harness/fleet.ts";
import { until } from "../harness/wait.ts";
import type { SyntheticAgent } from "./synthetic-agent.ts";

/** Waits for the agent's buffer to drain (everything acked), bounded. */
export async function drained(agent: SyntheticAgent, timeoutMs = 60_000): Promise<void> {
  await until(`${agent.agent}: every result acked`, () => agent.buffer.backlog().count === 0, {
    timeoutMs,
    pollMs: 100,
    detail: () => ({ backlog: agent.buffer.backlog().count, status: agent.shipper.status() }),
  });
}

/** Asserts PostgreSQL holds exactly what the agent committed; returns what was stored. */
export async function expectExactlyOnce(sql: Sql, agent: SyntheticAgent): Promise<StoredResults> {
  const stored = await storedResults(sql, agent.agent);
  const expectedSeqs = [...agent.committed.keys()].sort((a, b) => a - b);
  expect(agent.committed.size, `${agent.agent}: produced something`).toBeGreaterThan(0);
  expect(agent.shipper.status().appendFailures, `${agent.agent}: append failures`).toBe(0);
  expect(agent.buffer.dropped(), `${agent.agent}: dropped by the buffer`).toBe(0);
  expect(agent.buffer.backlog().count, `${agent.agent}: still buffered`).toBe(0);
  // Counted both ways: a duplicate would show as rows > distinct, a loss as a missing seq.
  expect(stored.rows, `${agent.agent}: rows`).toBe(agent.committed.size);
  expect(stored.distinctSeqs, `${agent.agent}: distinct seqs`).toBe(agent.committed.size);
  expect(stored.seqs, `${agent.agent}: stored seqs`).toEqual(expectedSeqs);
  const wrong = expectedSeqs.filter((s) => stored.markers.get(s) !== agent.committed.get(s));
  expect(wrong.slice(0, 5), `${agent.agent}: seqs whose stored marker differs`).toEqual([]);
  expect(new Set(stored.markers.values()).size, `${agent.agent}: distinct markers`).toBe(
    agent.committed.size,
  );
  return stored;
}

/** Resolves once every agent has had `more` results acked beyond what it had when called. */
export async function progress(
  agents: readonly SyntheticAgent[],
  more: number,
  timeoutMs = 30_000,
): Promise<void> {
  const from = agents.map((a) => a.shipper.status().ackedResults);
  await until(
    `${more} more results acked by every agent (from ${from.join(", ")})`,
    () => agents.every((a, i) => a.shipper.status().ackedResults >= from[i]! + more),
    { timeoutMs, detail: () => agents.map((a) => `${a.agent}=${a.shipper.status().ackedResults}`) },
  );
}
