// The raw COPY ceiling for bench/ingest: the same rows the aggregator stores
// (same columns, same operations JSON as test/ingest/results.ts produces),
// COPYed into `results` by postgres.js over several connections at once.
import type { Db } from "../../aggregator/db/connect.ts";
import { copyIn } from "./copy-in.ts";
import { copyText } from "../../aggregator/ingest/store/copy-rows.ts";

const COLUMNS = `site, agent_id, seq, target_id, started_at, duration_ms, healthy,
  failure_class, failure_message, operations, above_threshold, late, received_at`;

const FIVE = [0.91, 0.95, 1.02, 0.88, 0.97];
const OPERATIONS = JSON.stringify([
  { operation: "login", samples_ms: [1.8], failures: 0 },
  { operation: "write", samples_ms: FIVE, failures: 0 },
  { operation: "ls_dir", samples_ms: [1.2], failures: 0 },
  { operation: "read", samples_ms: FIVE, failures: 0 },
  { operation: "unlink", samples_ms: FIVE, failures: 0 },
]);

/** Rows per second COPYing `total` rows, `rowsPerCopy` per statement, over `connections` connections. */
export async function copyCeiling(
  sql: Db,
  o: { connections: number; rowsPerCopy: number; total: number; targets: number },
): Promise<number> {
  const perConnection = Math.ceil(o.total / o.connections);
  const ops = copyText(OPERATIONS);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.connections }, async (_, c) => {
      const agent = `copy-${c + 1}`;
      for (let seq = 1; seq <= perConnection; seq += o.rowsPerCopy) {
        const n = Math.min(o.rowsPerCopy, perConnection - seq + 1);
        const now = new Date().toISOString();
        const started = new Date(Date.now() - 5_000).toISOString();
        let text = "";
        for (let i = 0; i < n; i++) {
          text += `bench\t${agent}\t${seq + i}\t${((seq + i) % o.targets) + 1}\t${started}\t31.5\tt\t\\N\t\\N\t${ops}\t{}\tf\t${now}\n`;
        }
        await sql.begin((tx) => copyIn(tx, `COPY results (${COLUMNS}) FROM STDIN`, text));
      }
    }),
  );
  return (perConnection * o.connections) / ((performance.now() - t0) / 1000);
}
