// What `agent` and `probe` share before they start: the config file, with
// every config problem printed one per line.
import { loadAgentConfig } from "../shared/config/agent.ts";
import { ConfigError, formatProblem } from "../shared/config/problems.ts";
import type { AgentConfig } from "../shared/config/types.ts";
import { isSmbfleetError } from "../shared/errors.ts";
import type { CommandIo } from "../shared/command-io.ts";

/**
 * Loads the agent config; on any error prints each problem on its own line
 * (file:line: key: message) to stderr and returns null. Warnings are the
 * caller's to log.
 */
export function loadConfigOrReport(file: string, env: NodeJS.ProcessEnv, io: CommandIo): AgentConfig | null {
  try {
    return loadAgentConfig(file, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) io.stderr(`${formatProblem(p)}\n`);
      if (err.problems.length === 0) io.stderr(`${err.message}\n`);
      return null;
    }
    if (isSmbfleetError(err)) {
      io.stderr(`${err.message}\n`);
      return null;
    }
    throw err;
  }
}
