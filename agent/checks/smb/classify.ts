// The one table from smbclient's output to a failure class: what an operator
// must do about it. Rules are tried in order and the first that matches any
// line wins, so specific rules come before general ones (a session-setup
// ACCESS_DENIED is a credentials problem, a tree-connect one is access;
// "Connection to X failed (Error NT_STATUS_IO_TIMEOUT)" is a timeout, not
// unreachable). The line that matched is kept verbatim as the message.
import type { FailureClass } from "../../../shared/result.ts";

export interface Classification {
  failureClass: FailureClass;
  /** The raw smbclient line behind the class (or all output, capped, when no rule matched). */
  message: string;
}

interface Rule {
  pattern: RegExp;
  failureClass: FailureClass;
}

/** What smbclient prints when an unknown failure is kept raw: enough to diagnose, bounded for storage. */
const MAX_RAW_MESSAGE_CHARS = 1_000;

export const CLASSIFICATION_TABLE: readonly Rule[] = [
  // Our own process handling (stdbuf could not exec smbclient; a local temp file vanished).
  {
    pattern: /failed to run command|Error opening local file|^\S+ does not exist$/,
    failureClass: "internal",
  },

  { pattern: /NT_STATUS_IO_TIMEOUT/, failureClass: "timeout" },

  // Credentials. Kerberos refusals surface as a session-setup ACCESS_DENIED.
  {
    pattern:
      /NT_STATUS_(LOGON_FAILURE|WRONG_PASSWORD|NO_SUCH_USER|ACCOUNT_[A-Z_]+|PASSWORD_EXPIRED|PASSWORD_MUST_CHANGE|INVALID_LOGON_HOURS|INVALID_WORKSTATION|LOGON_TYPE_NOT_GRANTED|NO_LOGON_SERVERS|TRUSTED_RELATIONSHIP_FAILURE|NO_TRUST_SAM_ACCOUNT)\b/,
    failureClass: "auth",
  },
  {
    pattern: /Kerberos auth with .* not possible|session setup failed: NT_STATUS_ACCESS_DENIED/,
    failureClass: "auth",
  },

  { pattern: /NT_STATUS_BAD_NETWORK_NAME\b/, failureClass: "share_not_found" },

  // Protocol floor or signing/encryption requirements the two sides cannot meet.
  {
    pattern: /protocol negotiation failed|NT_STATUS_(INVALID_NETWORK_RESPONSE|INVALID_SIGNATURE)\b/,
    failureClass: "protocol",
  },

  {
    pattern:
      /NT_STATUS_(ACCESS_DENIED|MEDIA_WRITE_PROTECTED|NETWORK_ACCESS_DENIED|CANNOT_DELETE|PRIVILEGE_NOT_HELD|SHARING_VIOLATION)\b/,
    failureClass: "access_denied",
  },

  {
    pattern:
      /NT_STATUS_(CONNECTION_REFUSED|HOST_UNREACHABLE|NETWORK_UNREACHABLE|PORT_UNREACHABLE|CONNECTION_RESET|CONNECTION_DISCONNECTED|CONNECTION_ABORTED|ADDRESS_NOT_ASSOCIATED|BAD_NETWORK_PATH|HOST_DOWN)\b|Connection to .* failed|resolve_name|Unable to resolve/,
    failureClass: "unreachable",
  },

  {
    pattern:
      /NT_STATUS_(OBJECT_NAME_NOT_FOUND|OBJECT_PATH_NOT_FOUND|NO_SUCH_FILE|NOT_FOUND|NOT_A_DIRECTORY)\b/,
    failureClass: "not_found",
  },

  { pattern: /NT_STATUS_(DISK_FULL|QUOTA_EXCEEDED)\b/, failureClass: "disk_full" },
];

/** Does this output line report an error? (Success lines carry no NT_STATUS and match no rule.) */
export function isErrorLine(line: string): boolean {
  return /NT_STATUS_[A-Z0-9_]+/.test(line) || CLASSIFICATION_TABLE.some((r) => r.pattern.test(line));
}

export function classify(lines: readonly string[]): Classification {
  const meaningful = lines.map((l) => l.trim()).filter((l) => l.length > 0);
  for (const rule of CLASSIFICATION_TABLE) {
    const line = meaningful.find((l) => rule.pattern.test(l));
    if (line !== undefined) return { failureClass: rule.failureClass, message: line };
  }
  const status = meaningful.find((l) => /NT_STATUS_[A-Z0-9_]+/.test(l));
  const raw = status ?? meaningful.join("\n");
  return {
    failureClass: "unknown",
    message: raw.length > MAX_RAW_MESSAGE_CHARS ? `${raw.slice(0, MAX_RAW_MESSAGE_CHARS)}…` : raw,
  };
}
