// Wires a running agent together: metrics, the HTTP surface, the scheduler,
// the result sinks, and whatever else joins (the durable buffer and the
// sender plug in as components: a sink, a readiness check, a close). Built in
// one place so that start-up and shutdown order are visible at a glance:
//   start: metrics -> components -> HTTP -> scheduler
//   stop:  scheduler (no more results) -> components, newest first -> HTTP
import type { AgentConfig } from "../shared/config/types.ts";
import { errorMessage } from "../shared/errors.ts";
import { startHttpServer, type ReadinessCheck, type RunningHttpServer } from "../shared/http/server.ts";
import type { Logger } from "../shared/logger.ts";
import type { Check } from "./checks/types.ts";
import { resolveAgentIdentity } from "./identity.ts";
import { createAgentMetrics, type AgentMetrics } from "./metrics/agent-metrics.ts";
import { metricsSink, schedulerObserver } from "./metrics/record-result.ts";
import { logSink } from "./result-log.ts";
import { realClock, type Clock } from "./scheduler/clock.ts";
import { Scheduler, type ResultSink } from "./scheduler/scheduler.ts";

/** What a part of the agent hands the runtime when it starts. */
export interface RuntimeComponent {
  name: string;
  /** Receives every result after the metrics and the log have. Must not block. */
  sink?: ResultSink;
  readiness?: ReadinessCheck;
  /** Called once at shutdown, after the scheduler stopped: flush and release. */
  close(): Promise<void>;
}

export interface ComponentContext {
  config: AgentConfig;
  agentId: string;
  /** The site, from [agent] site or the certificate; empty when standalone without one. */
  site: string;
  logger: Logger;
  metrics: AgentMetrics;
}

/** Starts a component, or returns null when the config does not call for it (e.g. no [aggregator]). */
export type ComponentFactory = (ctx: ComponentContext) => Promise<RuntimeComponent | null>;

export interface AgentRuntimeOptions {
  config: AgentConfig;
  check: Check;
  logger: Logger;
  version: string;
  components?: readonly ComponentFactory[];
  clock?: Clock;
}

export interface AgentRuntime {
  readonly agentId: string;
  readonly site: string;
  readonly metrics: AgentMetrics;
  readonly scheduler: Scheduler;
  readonly http: RunningHttpServer;
  /** Idempotent. */
  stop(): Promise<void>;
}

/**
 * The agent's id: configured, else the certificate's agent name, else this
 * host's name. Throws CONFIG_INVALID when the config and the certificate
 * disagree (agent/identity.ts).
 */
export function agentIdOf(config: AgentConfig): string {
  return resolveAgentIdentity(config).agentId;
}

export async function startAgentRuntime(opts: AgentRuntimeOptions): Promise<AgentRuntime> {
  const { config, logger } = opts;
  const clock = opts.clock ?? realClock;
  const { agentId, site } = resolveAgentIdentity(config);
  const metrics = createAgentMetrics({
    site,
    agentId,
    version: opts.version,
    processMetrics: true,
  });

  const started: RuntimeComponent[] = [];
  const closeComponents = async (): Promise<void> => {
    for (const c of [...started].reverse()) {
      try {
        await c.close();
      } catch (err) {
        logger.error({ err, component: c.name }, `closing ${c.name} failed: ${errorMessage(err)}`);
      }
    }
  };

  let http: RunningHttpServer;
  let scheduler: Scheduler;
  try {
    for (const factory of opts.components ?? []) {
      const c = await factory({ config, agentId, site, logger, metrics });
      if (c !== null) started.push(c);
    }
    const sinks: ResultSink[] = [
      metricsSink(metrics),
      logSink(logger),
      ...started.flatMap((c) => (c.sink ? [c.sink] : [])),
    ];
    scheduler = new Scheduler({
      check: opts.check,
      targets: config.probes,
      sinks,
      maxConcurrentRuns: config.agent.maxConcurrentRuns,
      maxSpawnsPerSecond: config.agent.maxSpawnsPerSecond,
      logger,
      phaseSeed: agentId,
      observer: schedulerObserver(metrics),
      clock,
    });
    const startedAt = clock.now();
    const longestIntervalMs = Math.max(...config.probes.map((p) => p.intervalSeconds * 1000));
    const firstRuns: ReadinessCheck = {
      name: "first-runs",
      // Ready once every target reported, or after one interval: by then a
      // target that has still not finished is itself the news (see /metrics).
      check: () =>
        Promise.resolve(
          scheduler.allTargetsRan() || clock.now() - startedAt >= longestIntervalMs
            ? null
            : "waiting for the first run of every target",
        ),
    };
    http = await startHttpServer({
      listen: config.agent.httpListen,
      registry: metrics.registry,
      readiness: [firstRuns, ...started.flatMap((c) => (c.readiness ? [c.readiness] : []))],
      auth: config.httpAuth ?? null,
      logger,
    });
  } catch (err) {
    await closeComponents();
    throw err;
  }
  scheduler.start();

  let stopping: Promise<void> | null = null;
  return {
    agentId,
    site,
    metrics,
    scheduler,
    http,
    stop() {
      stopping ??= (async () => {
        await scheduler.stop();
        await closeComponents();
        await http.close();
      })();
      return stopping;
    },
  };
}
