// `smbfleet agent --config F`: probe the configured targets forever, serve
// /metrics /healthz /readyz, and (once configured) ship results to HQ.
// Stops on the signal main.ts aborts for SIGTERM/SIGINT: no new runs, runs in
// flight aborted, components flushed, HTTP closed, exit 0.
import type { CommandIo } from "../shared/command-io.ts";
import { VERSION } from "../shared/version.ts";
import { formatProblem } from "../shared/config/problems.ts";
import { errorMessage } from "../shared/errors.ts";
import { createLogger, type Logger } from "../shared/logger.ts";
import type { AgentConfig } from "../shared/config/types.ts";
import type { Check } from "./checks/types.ts";
import { AGENT_COMPONENTS } from "./components.ts";
import { createProbeCheck } from "./check-factory.ts";
import { loadConfigOrReport, parseConfigCommandLine } from "../shared/command-line.ts";
import { loadAgentConfig } from "../shared/config/agent.ts";
import { agentIdOf, startAgentRuntime, type AgentRuntime } from "./runtime.ts";

const USAGE = `usage: smbfleet agent --config FILE

Probes every [[probes]] target of FILE at its interval, serves /metrics,
/healthz and /readyz on [agent] http_listen, and runs until SIGTERM/SIGINT.
Without an [aggregator] section it runs standalone (local /metrics only).

options:
  -c, --config FILE   agent.toml (smbprobe's probe.toml works unchanged)
  -h, --help          this text
`;

export async function run(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  io: CommandIo,
): Promise<number> {
  const args = parseConfigCommandLine(argv, {}, USAGE, io);
  if (!args.ok) return args.exitCode;
  const config = loadConfigOrReport(() => loadAgentConfig(args.file, env), io);
  if (config === null) return 1;
  const logger = createLogger("agent");
  let agentId: string;
  try {
    agentId = agentIdOf(config);
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return 1;
  }
  return runAgent(config, logger, signal, createProbeCheck({ agentId, logger }));
}

/** The agent from a loaded config until the signal aborts; the exit code. */
export async function runAgent(
  config: AgentConfig,
  logger: Logger,
  signal: AbortSignal,
  check: Check,
): Promise<number> {
  for (const w of config.warnings) logger.warn({ problem: w }, formatProblem(w));
  // Logged once so an operator sees what the agent really runs with;
  // passwords are Secret values and print as <redacted>.
  logger.info({ version: VERSION, config }, "effective config");

  let runtime: AgentRuntime;
  try {
    runtime = await startAgentRuntime({
      config,
      check,
      logger,
      version: VERSION,
      components: AGENT_COMPONENTS,
    });
  } catch (err) {
    logger.error({ err }, `agent failed to start: ${errorMessage(err)}`);
    return 1;
  }
  logger.info(
    {
      agentId: runtime.agentId,
      site: runtime.site,
      targets: config.probes.length,
      http: `${runtime.http.host}:${runtime.http.port}`,
      mode: config.aggregator === null ? "standalone" : "fleet",
    },
    "agent started",
  );

  if (!signal.aborted) {
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  }
  logger.info({ reason: errorMessage(signal.reason) }, "agent stopping");
  await runtime.stop();
  logger.info("agent stopped");
  return 0;
}
