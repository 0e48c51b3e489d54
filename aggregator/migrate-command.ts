// `smbfleet migrate --config F`: apply the database migrations and exit.
// Safe to run while aggregators are up or starting (aggregator/db/migrate.ts).
import type { CommandIo } from "../shared/command-io.ts";
import { errorMessage } from "../shared/errors.ts";
import { createLogger } from "../shared/logger.ts";
import { migrateUrl } from "./db/migrate.ts";
import { loadFromCommandLine } from "./main.ts";

const USAGE = `usage: smbfleet migrate --config FILE

Applies every database migration not yet applied to [database] url of FILE
(SMBFLEET_DATABASE_URL overrides it), then exits. The aggregator also does
this at start-up; running both at once is safe.

options:
  -c, --config FILE   aggregator.toml
  -h, --help          this text
`;

export async function run(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  _signal: AbortSignal,
  io: CommandIo,
): Promise<number> {
  const config = loadFromCommandLine(argv, env, io, USAGE);
  if (typeof config === "number") return config;
  const logger = createLogger("migrate");
  try {
    const result = await migrateUrl(config.database.url, { logger, applicationName: "smbfleet-migrate" });
    io.stdout(
      result.applied.length === 0
        ? `schema is current (version ${result.version})\n`
        : `applied ${result.applied.map((v) => String(v).padStart(4, "0")).join(", ")}; schema version ${result.version}\n`,
    );
    return 0;
  } catch (err) {
    io.stderr(`smbfleet migrate: ${errorMessage(err)}\n`);
    return 1;
  }
}
