// Metrics as a post-commit observer of ingest (ingest/observers.ts): the
// smbprobe series per target, and the stored/duplicate/quarantined counters.
import type { PostCommitObserver } from "../ingest/observers.ts";
import type { AggregatorMetrics } from "./aggregator-metrics.ts";

export function metricsObserver(m: AggregatorMetrics): PostCommitObserver {
  return {
    name: "metrics",
    committed(batch) {
      const { site, agent } = batch.identity;
      m.recordResults(site, agent, batch.results());
      if (batch.storedCount > 0) m.ingestResults.inc({ site, outcome: "stored" }, batch.storedCount);
      if (batch.duplicates > 0) m.ingestResults.inc({ site, outcome: "duplicate" }, batch.duplicates);
      if (batch.quarantined.length > 0)
        m.ingestResults.inc({ site, outcome: "quarantined" }, batch.quarantined.length);
      m.agentLastSeen.set({ site, agent }, batch.receivedAtMs / 1000);
    },
  };
}
