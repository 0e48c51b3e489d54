// Command dispatch. Each command module exports
//   run(argv, env, signal, io) => Promise<number>
// and is imported lazily, so `check-config` does not load gRPC or PostgreSQL.
import { errorMessage, isSmbfleetError } from "../shared/errors.ts";
import type { CommandIo, CommandModule } from "../shared/command-io.ts";
import { VERSION } from "../shared/version.ts";

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  // One entry per command, added as each role lands.
  "check-config": {
    summary: "validate agent, aggregator and notifier config files",
    load: () => import("./check-config.ts"),
  },
  pki: {
    summary: "create the fleet CA; issue server and agent certificates",
    load: () => import("./pki.ts"),
  },
  agent: { summary: "probe the configured targets forever", load: () => import("../agent/main.ts") },
  probe: {
    summary: "run every probe once now and print the results",
    load: () => import("../agent/probe-command.ts"),
  },
  aggregator: {
    summary: "ingest agent streams into PostgreSQL; serve /metrics",
    load: () => import("../aggregator/main.ts"),
  },
  migrate: {
    summary: "apply database migrations and exit",
    load: () => import("../aggregator/migrate-command.ts"),
  },
};

export const USAGE = `usage: smbfleet <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)}${c.summary}`)
  .join("\n")}

Run 'smbfleet <command> --help' for a command's options.
`;

const defaultIo: CommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export async function runCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  io: CommandIo = defaultIo,
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    io.stdout(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr(`smbfleet: unknown command '${name}'\n\n${USAGE}`);
    return 2;
  }
  try {
    const mod = await command.load();
    return await mod.run(rest, env, signal, io);
  } catch (err) {
    // Commands report expected failures themselves and return a code; what
    // reaches here is unexpected, but still gets one clear line, not a trace.
    const code = isSmbfleetError(err) ? ` [${err.code}]` : "";
    io.stderr(`smbfleet ${name}: ${errorMessage(err)}${code}\n`);
    if (env["SMBFLEET_DEBUG"] === "1" && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`);
    return isSmbfleetError(err, "USAGE") ? 2 : 1;
  }
}
