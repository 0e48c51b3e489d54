// The agents table from the stream's point of view: register on Hello (or
// refuse), record heartbeats, and mark the stream gone.
import type { Db } from "../../db/connect.ts";
import type { TargetCache } from "./targets.ts";
import type { ValidTarget } from "../decode/validate.ts";

export interface Identity {
  site: string;
  agent: string;
}

export interface AgentReport {
  agentVersion: string;
  /** Server clock minus agent clock, ms; null when the agent sent no clock. */
  skewMs: number | null;
  backlog: bigint;
  dropped: bigint;
}

export type OpenOutcome =
  | { ok: true; highWater: bigint; connectedAt: Date }
  /** Refused: nothing was written. */
  | { ok: false; reason: string; why: "site_mismatch" | "disabled" };

/**
 * Registers the agent at Hello: the site, the agent row (created on first
 * contact), its report and the targets it announced. Refuses an agent the
 * database marks disabled, or one registered to another site (an agent id
 * belongs to one site; re-homing it means deleting its row first).
 */
export async function openAgent(
  sql: Db,
  targets: TargetCache,
  id: Identity,
  report: AgentReport,
  announced: readonly ValidTarget[],
): Promise<OpenOutcome> {
  // Decide first, so that a refused agent writes nothing at all.
  const existing = await sql`SELECT site, disabled FROM agents WHERE agent_id = ${id.agent}`;
  const refusal = refusalOf(existing[0], id);
  if (refusal !== null) return { ok: false, ...refusal };
  // One statement (see store.ts for why no client-side transaction): the
  // site, then the agent, guarded again in case the row changed meanwhile.
  const connectedAt = new Date();
  const upserted = await sql`
    WITH s AS (INSERT INTO sites (site) VALUES (${id.site}) ON CONFLICT DO NOTHING)
    INSERT INTO agents (agent_id, site, agent_version, last_seen, clock_skew_ms, backlog, dropped, connected_at)
    VALUES (${id.agent}, ${id.site}, ${report.agentVersion}, now(), ${report.skewMs}, ${report.backlog},
            ${report.dropped}, ${connectedAt})
    ON CONFLICT (agent_id) DO UPDATE SET
      agent_version = EXCLUDED.agent_version, last_seen = EXCLUDED.last_seen,
      clock_skew_ms = EXCLUDED.clock_skew_ms, backlog = EXCLUDED.backlog, dropped = EXCLUDED.dropped,
      connected_at = EXCLUDED.connected_at
    WHERE agents.site = EXCLUDED.site AND NOT agents.disabled
    RETURNING high_water_seq`;
  const row = upserted[0];
  if (row === undefined) {
    const now = await sql`SELECT site, disabled FROM agents WHERE agent_id = ${id.agent}`;
    return {
      ok: false,
      ...(refusalOf(now[0], id) ?? { why: "disabled", reason: `agent ${id.agent} changed while connecting` }),
    };
  }
  if (announced.length > 0) await targets.resolve(sql, id.site, announced);
  return { ok: true, highWater: row["high_water_seq"] as bigint, connectedAt };
}

function refusalOf(
  row: Record<string, unknown> | undefined,
  id: Identity,
): { reason: string; why: "site_mismatch" | "disabled" } | null {
  if (row === undefined) return null;
  if (row["site"] !== id.site) {
    return {
      why: "site_mismatch",
      reason: `agent ${id.agent} is registered to site ${String(row["site"])}, not ${id.site}`,
    };
  }
  if (row["disabled"] === true) return { why: "disabled", reason: `agent ${id.agent} is disabled (revoked)` };
  return null;
}

/** Records a Heartbeat. Returns false when the agent has been disabled meanwhile. */
export async function recordHeartbeat(sql: Db, id: Identity, report: Omit<AgentReport, "agentVersion">) {
  const rows = await sql`
    UPDATE agents SET last_seen = now(), clock_skew_ms = ${report.skewMs}, backlog = ${report.backlog},
                      dropped = ${report.dropped}
    WHERE agent_id = ${id.agent}
    RETURNING disabled`;
  return rows[0]?.["disabled"] === false;
}

/** Clears connected_at unless a newer stream of the same agent has set it since. */
export async function markDisconnected(sql: Db, id: Identity, connectedAt: Date): Promise<void> {
  await sql`UPDATE agents SET connected_at = NULL WHERE agent_id = ${id.agent} AND connected_at = ${connectedAt}`;
}
