// What bin/smbfleet does before main.ts runs, for the tools that start roles
// themselves (benchmarks, tests, the demo): the same V8 flags, read from the
// launcher itself so there is one place that sets them.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const LAUNCHER = fileURLToPath(new URL("../bin/smbfleet", import.meta.url));

/** The Node/V8 flags bin/smbfleet gives the agent (and `probe`). */
export function agentNodeFlags(launcher: string = LAUNCHER): string[] {
  const m = /^AGENT_NODE_FLAGS="([^"]*)"$/m.exec(readFileSync(launcher, "utf8"));
  if (m === null) throw new Error(`${launcher}: no AGENT_NODE_FLAGS line`);
  return m[1]!.split(" ").filter((f) => f !== "");
}
