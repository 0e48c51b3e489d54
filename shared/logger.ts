import { pino, type Logger } from "pino";

export type { Logger };

/** Paths that may carry secrets, redacted whatever their value type. */
const REDACT_PATHS = [
  "password",
  "*.password",
  "*.*.password",
  "integration_key",
  "*.integration_key",
  "key",
];

/** pino JSON on stdout (or the given stream), secrets redacted. */
export function createLogger(
  role: string,
  options: { level?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  return pino(
    {
      name: `smbfleet-${role}`,
      level: options.level ?? process.env["SMBFLEET_LOG_LEVEL"] ?? "info",
      redact: { paths: REDACT_PATHS, censor: "<redacted>" },
      base: { role },
    },
    options.destination ?? process.stdout,
  );
}

/** A logger that writes nothing, for tests and library callers. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
