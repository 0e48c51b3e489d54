// smbfleet check-config FILE…: validate agent, aggregator and notifier
// configs without starting anything. Every problem of every file is printed,
// one per line (file:line: key: message), then one verdict line per file.
import { checkConfigFile, type CheckedConfig } from "../shared/config/check.ts";
import { countErrors, formatProblem } from "../shared/config/problems.ts";
import type { CommandIo } from "../shared/command-io.ts";

export const USAGE = `usage: smbfleet check-config FILE...

Validates each agent, aggregator or notifier config file (the kind is told
from its sections) and prints every problem as FILE:LINE: KEY: MESSAGE.
Exit status: 0 when no file has errors (warnings allowed), 1 otherwise,
2 on a usage error.
`;

export function run(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  _signal: AbortSignal,
  io: CommandIo,
): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.stdout(USAGE);
    return Promise.resolve(0);
  }
  // "--" ends options, so a file named "-x" can still be checked.
  const dashDash = argv.indexOf("--");
  const options = dashDash === -1 ? argv : argv.slice(0, dashDash);
  const unknown = options.find((a) => a.startsWith("-") && a !== "-");
  if (unknown !== undefined) {
    io.stderr(`smbfleet check-config: unknown option '${unknown}'\n\n${USAGE}`);
    return Promise.resolve(2);
  }
  const files = argv.filter((a, i) => a !== "--" || i !== dashDash);
  if (files.length === 0) {
    io.stderr(`smbfleet check-config: no file given\n\n${USAGE}`);
    return Promise.resolve(2);
  }
  let failed = false;
  for (const file of files) {
    const checked = checkConfigFile(file, env);
    for (const p of checked.problems) io.stdout(`${formatProblem(p)}\n`);
    const errors = countErrors(checked.problems);
    if (errors > 0) failed = true;
    io.stdout(`${file}: ${errors > 0 ? plural(errors, "error") : `ok (${describe(checked)})`}\n`);
  }
  return Promise.resolve(failed ? 1 : 0);
}

function describe(checked: CheckedConfig): string {
  const warnings = plural(checked.problems.length - countErrors(checked.problems), "warning");
  switch (checked.kind) {
    case "agent":
      return `agent config, ${plural(checked.config?.probes.length ?? 0, "probe")}, ${warnings}`;
    case "aggregator":
      return `aggregator config, ${warnings}`;
    case "notifier":
      return `notifier config, ${plural(checked.config?.notifications.length ?? 0, "notification")}, ${warnings}`;
    case null:
      return warnings;
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
