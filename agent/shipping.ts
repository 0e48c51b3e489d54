// The durable buffer and the sender to HQ, as one runtime component: every
// result is committed to the SQLite buffer (accept) before anything is sent,
// and the shipper streams it to the aggregator. Present only when the config
// has an [aggregator] section.
import { dirname } from "node:path";
import { mkdirSync } from "node:fs";
import { VERSION } from "../shared/version.ts";
import { targetRefOf } from "../shared/config/target-ref.ts";
import { openBuffer, type DropReason } from "./buffer/buffer.ts";
import { startShipper } from "./pusher/shipper.ts";
import type { ShipperStatus } from "./pusher/state.ts";
import type { ComponentFactory } from "./runtime.ts";
import type { AgentMetrics } from "./metrics/agent-metrics.ts";

const DROP_REASON_LABEL = {
  bytes: "max_bytes",
  age: "max_age",
  disk_full: "disk_full",
} as const satisfies Record<DropReason, string>;

/** Feeds the shipper's status into the agent's gauges and counters. */
function metricsBridge(metrics: AgentMetrics, now: () => number) {
  let acked = 0;
  return {
    update(s: ShipperStatus): void {
      const oldestAge = s.oldestBufferedMs === null ? 0 : Math.max(0, (now() - s.oldestBufferedMs) / 1000);
      metrics.buffer.setBacklog(s.backlog, s.backlogBytes, oldestAge);
      metrics.aggregator.setConnected(s.connected);
      if (s.ackedResults > acked) metrics.aggregator.acked(s.ackedResults - acked);
      acked = s.ackedResults;
    },
  };
}

export const shippingComponent: ComponentFactory = (ctx) => {
  const { config, logger, metrics } = ctx;
  if (config.aggregator === null) return Promise.resolve(null);
  mkdirSync(dirname(config.agent.bufferPath), { recursive: true });
  const buffer = openBuffer(config.agent.bufferPath, config.agent.buffer, {
    logger,
    onDrop: (reason, count) => metrics.buffer.dropped(DROP_REASON_LABEL[reason], count),
  });
  const stopper = new AbortController();
  const shipper = startShipper(
    {
      buffer,
      aggregator: config.aggregator,
      site: ctx.site,
      agentId: ctx.agentId,
      agentVersion: VERSION,
      targets: config.probes.map(targetRefOf),
      logger,
      metrics: metricsBridge(metrics, Date.now),
    },
    stopper.signal,
  );
  return Promise.resolve({
    name: "shipper",
    sink: (result) => shipper.accept(result),
    // Ready means "results are safe": they are committed locally whether or
    // not HQ is reachable, so a lost WAN link does not make the agent unready.
    close: async () => {
      await shipper.stop();
      stopper.abort();
      buffer.close();
    },
  });
};
