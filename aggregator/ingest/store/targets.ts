// Target rows: one per identity (site, address, domain, share, basedir). A
// batch names targets by value; this turns them into ids, upserting only the
// ones this process has not seen with exactly these details, so a steady
// stream of results costs no target writes at all.
import { targetKey } from "../../../shared/result.ts";
import type { Db } from "../../db/connect.ts";
import type { ValidTarget } from "../decode/validate.ts";

interface Known {
  id: bigint;
  /** name, port and labels as last written; a change means an update. */
  details: string;
}

function details(t: ValidTarget): string {
  const labels = Object.keys(t.labels)
    .sort()
    .map((k) => [k, t.labels[k]]);
  return JSON.stringify([t.name, t.port, labels]);
}

export class TargetCache {
  readonly #known = new Map<string, Known>();

  static key(site: string, t: Pick<ValidTarget, "address" | "domain" | "share" | "basedir">): string {
    return `${site}\u0000${targetKey(t)}`;
  }

  /**
   * Ids for the given targets of one site, upserting (in one statement, its
   * own transaction) those unknown or changed. Rows are written in key order
   * so that two replicas upserting the same targets cannot deadlock.
   */
  async resolve(sql: Db, site: string, targets: Iterable<ValidTarget>): Promise<Map<string, bigint>> {
    const ids = new Map<string, bigint>();
    const toWrite = new Map<string, ValidTarget>();
    for (const t of targets) {
      const key = TargetCache.key(site, t);
      if (ids.has(key) || toWrite.has(key)) continue;
      const known = this.#known.get(key);
      if (known !== undefined && known.details === details(t)) ids.set(key, known.id);
      else toWrite.set(key, t);
    }
    if (toWrite.size === 0) return ids;

    const rows = [...toWrite.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, t]) => t);
    const written = await sql`
      INSERT INTO targets (site, address, port, domain, share, basedir, name, labels)
      SELECT ${site}, * FROM unnest(
        ${rows.map((t) => t.address)}::text[], ${rows.map((t) => t.port)}::integer[],
        ${rows.map((t) => t.domain)}::text[], ${rows.map((t) => t.share)}::text[],
        ${rows.map((t) => t.basedir)}::text[], ${rows.map((t) => t.name)}::text[],
        ${rows.map((t) => t.labels) as never}::jsonb[])
      ON CONFLICT (site, address, lower(domain), lower(share), basedir) DO UPDATE
        SET port = EXCLUDED.port, name = EXCLUDED.name, labels = EXCLUDED.labels, updated_at = now()
      RETURNING id, address, domain, share, basedir`;
    for (const row of written) {
      const key = TargetCache.key(site, {
        address: String(row["address"]),
        domain: String(row["domain"]),
        share: String(row["share"]),
        basedir: String(row["basedir"]),
      });
      const t = toWrite.get(key);
      if (t === undefined) continue;
      const id = row["id"] as bigint;
      ids.set(key, id);
      this.#known.set(key, { id, details: details(t) });
    }
    return ids;
  }
}
