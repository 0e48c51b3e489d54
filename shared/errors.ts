// Errors carry a stable `code` that callers branch on, and their `cause`.
// Messages add context ("pushing batch 42: ..."); never parse them.

export type ErrorCode =
  | "CONFIG_INVALID"
  | "CONFIG_NOT_FOUND"
  | "PROBE_TIMEOUT"
  | "BUFFER_IO"
  | "STREAM_REJECTED"
  | "STREAM_CLOSED"
  | "DB_UNAVAILABLE"
  | "DB_CONFLICT"
  | "DB_COMMIT_UNKNOWN"
  | "DB_REJECTED"
  | "MIGRATION_FAILED"
  | "PKI_FAILED"
  | "PKI_EXISTS"
  | "TLS_INVALID"
  | "REVOCATION_INVALID"
  | "USAGE";

export class SmbfleetError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SmbfleetError";
    this.code = code;
  }
}

export function isSmbfleetError(err: unknown, code?: ErrorCode): err is SmbfleetError {
  return err instanceof SmbfleetError && (code === undefined || err.code === code);
}

/** The message of anything thrown, for logs and context chains. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
