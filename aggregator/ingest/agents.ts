// The agents table from the stream's point of view: register on Hello (or
// refuse), record heartbeats, and mark the stream gone.
import type { Db } from "../db/connect.ts";
import type { TargetCache } from "./targets.ts";
import type { ValidTarget } from "./validate.ts";

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
  | { ok: false; reason: string };

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
  const connectedAt = new Date();
  let pending: Parameters<TargetCache["commit"]>[0] = new Map();
  const outcome = await sql.begin(async (tx): Promise<OpenOutcome> => {
    const existing = await tx`SELECT site, disabled FROM agents WHERE agent_id = ${id.agent} FOR UPDATE`;
    const row = existing[0];
    if (row !== undefined && row["site"] !== id.site) {
      return {
        ok: false,
        reason: `agent ${id.agent} is registered to site ${String(row["site"])}, not ${id.site}`,
      };
    }
    if (row?.["disabled"] === true) return { ok: false, reason: `agent ${id.agent} is disabled (revoked)` };
    await tx`INSERT INTO sites (site) VALUES (${id.site}) ON CONFLICT DO NOTHING`;
    const upserted = await tx`
      INSERT INTO agents (agent_id, site, agent_version, last_seen, clock_skew_ms, backlog, dropped, connected_at)
      VALUES (${id.agent}, ${id.site}, ${report.agentVersion}, now(), ${report.skewMs}, ${report.backlog},
              ${report.dropped}, ${connectedAt})
      ON CONFLICT (agent_id) DO UPDATE SET
        agent_version = EXCLUDED.agent_version, last_seen = EXCLUDED.last_seen,
        clock_skew_ms = EXCLUDED.clock_skew_ms, backlog = EXCLUDED.backlog, dropped = EXCLUDED.dropped,
        connected_at = EXCLUDED.connected_at
      RETURNING high_water_seq`;
    if (announced.length > 0) pending = (await targets.resolve(tx, id.site, announced)).pending;
    return { ok: true, highWater: upserted[0]?.["high_water_seq"] as bigint, connectedAt };
  });
  if (outcome.ok) targets.commit(pending);
  return outcome;
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
