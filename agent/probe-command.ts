// `smbfleet probe --config F [--json] [--once]`: every target once, now,
// under the configured concurrency cap; a table per target (or the results
// as JSON). Exit 0 only if every target is healthy, 1 otherwise, 2 for a bad
// command line or config. For ad-hoc troubleshooting at a site.
import type { CommandIo } from "../shared/command-io.ts";
import { formatProblem } from "../shared/config/problems.ts";
import type { AgentConfig } from "../shared/config/types.ts";
import { createLogger, type Logger } from "../shared/logger.ts";
import type { ProbeResult } from "../shared/result.ts";
import type { Check } from "./checks/types.ts";
import { createProbeCheck } from "./check-factory.ts";
import { loadConfigOrReport, parseConfigCommandLine } from "../shared/command-line.ts";
import { loadAgentConfig } from "../shared/config/agent.ts";
import { formatReport } from "./probe-table.ts";
import { agentIdOf } from "./runtime.ts";
import { runAllOnce } from "./scheduler/run-once.ts";

const USAGE = `usage: smbfleet probe --config FILE [--json] [--once]

Runs every [[probes]] target of FILE once, now, and prints per target the
operations (samples, median, p95, failures) and healthy / UNHEALTHY.
Exit status: 0 all healthy, 1 any unhealthy, 2 bad command line or config.

options:
  -c, --config FILE   agent.toml (smbprobe's probe.toml works unchanged)
      --json          print the results as a JSON array instead of tables
      --once          run once and exit (the only mode; accepted for scripts)
  -h, --help          this text
`;

export async function run(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  io: CommandIo,
): Promise<number> {
  const args = parseConfigCommandLine(
    argv,
    { json: { type: "boolean" }, once: { type: "boolean" } },
    USAGE,
    io,
  );
  if (!args.ok) return args.exitCode;
  const config = loadConfigOrReport(() => loadAgentConfig(args.file, env), io);
  if (config === null) return 2;
  // stdout carries the table or the JSON; logs go to stderr and only from warn up.
  const logger = createLogger("probe", {
    level: env["SMBFLEET_LOG_LEVEL"] ?? "warn",
    destination: process.stderr,
  });
  const check = createProbeCheck({ agentId: agentIdOf(config), logger });
  return probeOnce(config, check, { json: args.value["json"] === true, signal, io, logger });
}

export async function probeOnce(
  config: AgentConfig,
  check: Check,
  opts: { json: boolean; signal: AbortSignal; io: CommandIo; logger: Logger },
): Promise<number> {
  for (const w of config.warnings) opts.io.stderr(`${formatProblem(w)}\n`);
  const settled = await runAllOnce(check, config.probes, {
    maxConcurrentRuns: config.agent.maxConcurrentRuns,
    maxSpawnsPerSecond: config.agent.maxSpawnsPerSecond,
    logger: opts.logger,
    signal: opts.signal,
  });
  const results = settled.filter((r): r is ProbeResult => r !== null);
  opts.io.stdout(opts.json ? `${JSON.stringify(results, null, 2)}\n` : formatReport(results));
  if (opts.signal.aborted) {
    opts.io.stderr(`interrupted: ${config.probes.length - results.length} targets not probed\n`);
    return 1;
  }
  return results.every((r) => r.healthy) ? 0 : 1;
}
