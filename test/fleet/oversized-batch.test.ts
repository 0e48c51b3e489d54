// The sender against an aggregator whose [server] max_message_bytes is below
// the sender's batch size (the config allows any value from 1 KiB): the
// aggregator would refuse each batch in-band with RESOURCE_EXHAUSTED — the
// code it also uses for its rate limit, which the sender retries — so the same
// batch would be refused forever and the backlog behind it stall. The
// aggregator states its limit in Welcome and the sender keeps its batches
// below it; a single result larger than the limit can never be delivered and
// is discarded (counted as rejected) rather than stalling the rest.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openBuffer, type ResultBuffer } from "../../agent/buffer/buffer.ts";
import type { ShipperStatus } from "../../agent/pusher/state.ts";
import type { TargetRef } from "../../shared/result.ts";
import { startShipper } from "../../agent/pusher/shipper.ts";
import { silentLogger } from "../../shared/logger.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { startIngestFixture, type IngestFixture } from "../ingest/fixture.ts";
import { until } from "../harness/wait.ts";
import { FAST_RECONNECT, syntheticResult, syntheticTargets } from "./synthetic-agent.ts";

/** The smallest value [server] max_message_bytes accepts is 1 KiB; 64 KiB is a plausible hardening. */
const MAX_MESSAGE_BYTES = 64 * 1024;
const RESULTS = 1_000;
const WAIT_MS = 15_000;

let pg: RunningPostgres;
let fx: IngestFixture;
let dir: string;
beforeAll(async () => {
  pg = await startPostgres();
  fx = await startIngestFixture(pg, "oversized", { settings: { maxMessageBytes: MAX_MESSAGE_BYTES } });
  dir = mkdtempSync(join(tmpdir(), "smbfleet-oversized-"));
});
afterAll(async () => {
  await fx?.close();
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends the buffer to the aggregator until it is empty (failing after WAIT_MS); the sender's last status. */
async function drain(buffer: ResultBuffer, agentId: string, targets: TargetRef[]): Promise<ShipperStatus> {
  const abort = new AbortController();
  const shipper = startShipper(
    {
      buffer,
      aggregator: { url: `127.0.0.1:${fx.server.port}`, ca: null, cert: null, key: null, insecure: true },
      site: "paris",
      agentId,
      agentVersion: "0.0.0-test",
      targets,
      logger: silentLogger(),
      options: FAST_RECONNECT,
    },
    abort.signal,
  );
  try {
    await until(`${agentId}: the backlog delivered`, () => buffer.backlog().count === 0, {
      timeoutMs: WAIT_MS,
      pollMs: 100,
      detail: () => shipper.status(),
    });
    return shipper.status();
  } finally {
    await shipper.stop();
    buffer.close();
  }
}

describe("aggregator message limit below the sender's batch size", () => {
  it("still delivers the backlog", async () => {
    const buffer = openBuffer(join(dir, "buffer.db"), { maxBytes: 1 << 30, maxAgeSeconds: 86_400 });
    const targets = syntheticTargets(10);
    buffer.appendMany(
      Array.from({ length: RESULTS }, (_, i) => syntheticResult(targets[i % 10]!, Date.now(), `m${i}`)),
    );
    const status = await drain(buffer, "paris-01", targets);
    expect({ backlog: status.backlog, acked: status.ackedResults }).toEqual({ backlog: 0, acked: RESULTS });
    expect(status.rejects).toBe(0);
  });

  it("discards a single result larger than the limit and delivers the rest", async () => {
    const buffer = openBuffer(join(dir, "huge.db"), { maxBytes: 1 << 30, maxAgeSeconds: 86_400 });
    const targets = syntheticTargets(1);
    const huge = syntheticResult(targets[0]!, Date.now(), "x".repeat(MAX_MESSAGE_BYTES * 2));
    buffer.appendMany([
      syntheticResult(targets[0]!, Date.now(), "before"),
      huge,
      syntheticResult(targets[0]!, Date.now(), "after"),
    ]);
    const status = await drain(buffer, "paris-02", targets);
    expect({ backlog: status.backlog, acked: status.ackedResults, rejected: status.rejected }).toEqual({
      backlog: 0,
      acked: 2,
      rejected: 1,
    });
    const rows = await fx.sql<{ failure_message: string }[]>`
      SELECT failure_message FROM results WHERE agent_id = 'paris-02' ORDER BY seq`;
    expect(rows.map((r) => r.failure_message)).toEqual(["before", "after"]);
  });
});
