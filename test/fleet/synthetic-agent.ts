// An agent without probes: the real buffer (agent/buffer) and the real sender
// (agent/pusher) with the agent's own certificate, fed with synthetic results
// as fast as a test needs them. Every result carries a unique marker in its
// failure_message ("<agent>#<n>"), and the seq the buffer assigned to it is
// recorded, so a test can compare PostgreSQL against exactly what was
// committed at the agent: same seqs, same markers, nothing more, nothing less.
import { join } from "node:path";
import { openBuffer, type ResultBuffer } from "../../agent/buffer/buffer.ts";
import type { ShipperOptions } from "../../agent/pusher/options.ts";
import { startShipper, type Shipper } from "../../agent/pusher/shipper.ts";
import { silentLogger, type Logger } from "../../shared/logger.ts";
import type { ProbeResult, TargetRef } from "../../shared/result.ts";
import type { FleetPki } from "../harness/fleet.ts";

/** Quick reconnects so that faults resolve within a test's time; the rest are the sender's defaults. */
export const FAST_RECONNECT: Partial<ShipperOptions> = {
  backoff: { initialMs: 100, maxMs: 1_000, factor: 2, jitter: 0.2 },
  retryBackoff: { initialMs: 100, maxMs: 1_000, factor: 2, jitter: 0.2 },
  connectTimeoutMs: 3_000,
  welcomeTimeoutMs: 5_000,
  stopGraceMs: 500,
};

/** Loose enough that no test result is ever dropped for size or age. */
const ROOMY = { maxBytes: 1 << 30, maxAgeSeconds: 30 * 86_400 };

export function syntheticTargets(count: number): TargetRef[] {
  return Array.from({ length: count }, (_, t) => ({
    name: `share-${t}`,
    address: `10.9.${Math.floor(t / 250)}.${(t % 250) + 1}`,
    port: 445,
    domain: "CORP",
    share: `finance${t}`,
    basedir: ".",
    labels: { tier: "synthetic" },
  }));
}

/** A healthy smbprobe-shaped run carrying `marker` in failure_message. */
export function syntheticResult(target: TargetRef, startedAtMs: number, marker: string): ProbeResult {
  const five = [0.91, 0.95, 1.02, 0.88, 0.97];
  return {
    target,
    startedAtMs,
    durationMs: 31.5,
    operations: [
      { operation: "login", samplesMs: [1.8], failures: 0 },
      { operation: "write", samplesMs: five, failures: 0 },
      { operation: "ls_dir", samplesMs: [1.2], failures: 0 },
      { operation: "read", samplesMs: five, failures: 0 },
      { operation: "unlink", samplesMs: five, failures: 0 },
    ],
    failureClass: null,
    failureMessage: marker,
    healthy: true,
    aboveThreshold: [],
  };
}

export interface SyntheticAgentOptions {
  site: string;
  agent: string;
  /** host:port of the aggregator (or of a proxy in front of it). */
  url: string;
  pki: FleetPki;
  /** Where buffer.db goes. */
  dir: string;
  targets?: number;
  /** Markers are <prefix><n>; default "<agent>#". A restarted agent needs a new prefix. */
  markerPrefix?: string;
  shipper?: Partial<ShipperOptions>;
  logger?: Logger;
}

export interface SyntheticAgent {
  readonly site: string;
  readonly agent: string;
  readonly buffer: ResultBuffer;
  readonly shipper: Shipper;
  /** seq → marker of every result committed to the buffer, in order. */
  readonly committed: Map<number, string>;
  /**
   * Commits `count` results now, one per target in turn (a run of every target
   * per round), started at startedAt(i) for the i-th result of this agent.
   */
  produce(count: number, startedAt?: (i: number) => number): void;
  /** Produces `perTick` results every `everyMs` until stopProducing() or maxTicks. */
  startProducing(perTick: number, everyMs: number, maxTicks: number): void;
  stopProducing(): void;
  /** Stops producing and sending (the buffer stays open for inspection). */
  stop(): Promise<void>;
  /** stop() and close the buffer. */
  close(): Promise<void>;
}

export async function startSyntheticAgent(o: SyntheticAgentOptions): Promise<SyntheticAgent> {
  const files = await o.pki.agent(o.site, o.agent);
  const buffer = openBuffer(join(o.dir, `${o.agent}.db`), ROOMY);
  const targets = syntheticTargets(o.targets ?? 10);
  const abort = new AbortController();
  const shipper = startShipper(
    {
      buffer,
      aggregator: { url: o.url, ca: files.ca, cert: files.cert, key: files.key, insecure: false },
      site: o.site,
      agentId: o.agent,
      agentVersion: "0.0.0-synthetic",
      targets,
      logger: o.logger ?? silentLogger(),
      options: { ...FAST_RECONNECT, ...o.shipper },
    },
    abort.signal,
  );
  const committed = new Map<number, string>();
  const prefix = o.markerPrefix ?? `${o.agent}#`;
  let produced = 0;
  let timer: NodeJS.Timeout | null = null;

  const produce = (count: number, startedAt: (i: number) => number = () => Date.now()): void => {
    for (let k = 0; k < count; k++) {
      const i = produced++;
      const marker = `${prefix}${i}`;
      shipper.accept(syntheticResult(targets[i % targets.length]!, startedAt(i), marker));
      // accept() is a synchronous append: the newest seq in the file is this result's.
      committed.set(buffer.lastSeq(), marker);
    }
  };
  const stopProducing = (): void => {
    if (timer !== null) clearInterval(timer);
    timer = null;
  };
  const stop = async (): Promise<void> => {
    stopProducing();
    await shipper.stop();
  };

  return {
    site: o.site,
    agent: o.agent,
    buffer,
    shipper,
    committed,
    produce,
    startProducing(perTick, everyMs, maxTicks) {
      stopProducing();
      let ticks = 0;
      timer = setInterval(() => {
        produce(perTick);
        if (++ticks >= maxTicks) stopProducing();
      }, everyMs);
    },
    stopProducing,
    stop,
    async close() {
      await stop();
      buffer.close();
    },
  };
}
