import { describe, expect, it } from "vitest";
import type { FailureClass } from "../../../shared/result.ts";
import { classify, isErrorLine } from "./classify.ts";

// Lines as smbclient 4.17 prints them (captured against the harness Samba, or
// from Samba's source for the statuses a loopback server cannot produce).
const CASES: [string[], FailureClass, string][] = [
  [
    ["session setup failed: NT_STATUS_LOGON_FAILURE"],
    "auth",
    "session setup failed: NT_STATUS_LOGON_FAILURE",
  ],
  [
    ["session setup failed: NT_STATUS_WRONG_PASSWORD"],
    "auth",
    "session setup failed: NT_STATUS_WRONG_PASSWORD",
  ],
  [
    ["session setup failed: NT_STATUS_ACCOUNT_DISABLED"],
    "auth",
    "session setup failed: NT_STATUS_ACCOUNT_DISABLED",
  ],
  [
    ["session setup failed: NT_STATUS_ACCOUNT_LOCKED_OUT"],
    "auth",
    "session setup failed: NT_STATUS_ACCOUNT_LOCKED_OUT",
  ],
  [
    ["session setup failed: NT_STATUS_PASSWORD_EXPIRED"],
    "auth",
    "session setup failed: NT_STATUS_PASSWORD_EXPIRED",
  ],
  [
    [
      "Kerberos auth with 'u@WORKGROUP' (WORKGROUP\\u) to access '127.0.0.1' not possible",
      "session setup failed: NT_STATUS_ACCESS_DENIED",
    ],
    "auth",
    "Kerberos auth with 'u@WORKGROUP' (WORKGROUP\\u) to access '127.0.0.1' not possible",
  ],
  [
    ["tree connect failed: NT_STATUS_BAD_NETWORK_NAME"],
    "share_not_found",
    "tree connect failed: NT_STATUS_BAD_NETWORK_NAME",
  ],
  [
    ["tree connect failed: NT_STATUS_ACCESS_DENIED"],
    "access_denied",
    "tree connect failed: NT_STATUS_ACCESS_DENIED",
  ],
  [
    ["NT_STATUS_ACCESS_DENIED opening remote file \\x"],
    "access_denied",
    "NT_STATUS_ACCESS_DENIED opening remote file \\x",
  ],
  [
    ["NT_STATUS_MEDIA_WRITE_PROTECTED opening remote file \\x"],
    "access_denied",
    "NT_STATUS_MEDIA_WRITE_PROTECTED opening remote file \\x",
  ],
  [
    ["tree connect failed: NT_STATUS_NETWORK_ACCESS_DENIED"],
    "access_denied",
    "tree connect failed: NT_STATUS_NETWORK_ACCESS_DENIED",
  ],
  [
    ["do_connect: Connection to 127.0.0.1 failed (Error NT_STATUS_CONNECTION_REFUSED)"],
    "unreachable",
    "do_connect: Connection to 127.0.0.1 failed (Error NT_STATUS_CONNECTION_REFUSED)",
  ],
  [
    ["do_connect: Connection to 10.9.9.9 failed (Error NT_STATUS_HOST_UNREACHABLE)"],
    "unreachable",
    "do_connect: Connection to 10.9.9.9 failed (Error NT_STATUS_HOST_UNREACHABLE)",
  ],
  [
    ["do_connect: Connection to 10.9.9.9 failed (Error NT_STATUS_NETWORK_UNREACHABLE)"],
    "unreachable",
    "do_connect: Connection to 10.9.9.9 failed (Error NT_STATUS_NETWORK_UNREACHABLE)",
  ],
  // A name that does not resolve: smbclient says UNSUCCESSFUL, the "Connection to ... failed" shape says unreachable.
  [
    ["do_connect: Connection to nonexistent.invalid failed (Error NT_STATUS_UNSUCCESSFUL)"],
    "unreachable",
    "do_connect: Connection to nonexistent.invalid failed (Error NT_STATUS_UNSUCCESSFUL)",
  ],
  // A timeout wins over the generic connection-failed rule.
  [
    ["do_connect: Connection to 127.0.0.1 failed (Error NT_STATUS_IO_TIMEOUT)"],
    "timeout",
    "do_connect: Connection to 127.0.0.1 failed (Error NT_STATUS_IO_TIMEOUT)",
  ],
  [["NT_STATUS_IO_TIMEOUT listing \\*"], "timeout", "NT_STATUS_IO_TIMEOUT listing \\*"],
  [
    ["cd \\nodir\\: NT_STATUS_OBJECT_NAME_NOT_FOUND"],
    "not_found",
    "cd \\nodir\\: NT_STATUS_OBJECT_NAME_NOT_FOUND",
  ],
  [
    ["NT_STATUS_OBJECT_PATH_NOT_FOUND listing \\a\\b\\*"],
    "not_found",
    "NT_STATUS_OBJECT_PATH_NOT_FOUND listing \\a\\b\\*",
  ],
  [["NT_STATUS_NO_SUCH_FILE listing \\nope"], "not_found", "NT_STATUS_NO_SUCH_FILE listing \\nope"],
  [["Error writing file: NT_STATUS_DISK_FULL"], "disk_full", "Error writing file: NT_STATUS_DISK_FULL"],
  [
    ["NT_STATUS_QUOTA_EXCEEDED opening remote file \\x"],
    "disk_full",
    "NT_STATUS_QUOTA_EXCEEDED opening remote file \\x",
  ],
  [
    ["protocol negotiation failed: NT_STATUS_NOT_SUPPORTED"],
    "protocol",
    "protocol negotiation failed: NT_STATUS_NOT_SUPPORTED",
  ],
  [
    [
      "lp_load_ex: Max protocol NT1 is less than min protocol SMB2_02.",
      "protocol negotiation failed: NT_STATUS_INVALID_PARAMETER_MIX",
    ],
    "protocol",
    "protocol negotiation failed: NT_STATUS_INVALID_PARAMETER_MIX",
  ],
  [
    ["stdbuf: failed to run command '/nope/smbclient': No such file or directory"],
    "internal",
    "stdbuf: failed to run command '/nope/smbclient': No such file or directory",
  ],
  [["/tmp/x/w-0 does not exist"], "internal", "/tmp/x/w-0 does not exist"],
  // Unknown statuses keep the raw line.
  [
    ["NT_STATUS_INSUFF_SERVER_RESOURCES opening remote file \\x"],
    "unknown",
    "NT_STATUS_INSUFF_SERVER_RESOURCES opening remote file \\x",
  ],
  [["something new", "  and more  "], "unknown", "something new\nand more"],
];

describe("classify", () => {
  it.each(CASES)("%j → %s", (lines, failureClass, message) => {
    expect(classify(lines)).toEqual({ failureClass, message });
  });

  it("caps an unknown raw message", () => {
    const r = classify(["x".repeat(5000)]);
    expect(r.failureClass).toBe("unknown");
    expect(r.message.length).toBeLessThanOrEqual(1001);
  });
});

describe("isErrorLine", () => {
  it("does not take success output for an error", () => {
    for (const line of [
      "putting file /tmp/w-0 as \\.smbfleet-probe-a-1-0 (2000.0 kb/s) (average 2000.0 kb/s)",
      "getting file \\.smbfleet-probe-a-1-0 of size 4096 as /tmp/r-0 (4000.0 KiloBytes/sec) (average 4000.0 KiloBytes/sec)",
      "  .                                   D        0  Sun Nov 22 05:18:13 2026",
      "\t\t264212084 blocks of size 1024. 82311364 blocks available",
      "",
    ]) {
      expect(isErrorLine(line), line).toBe(false);
    }
  });

  it("takes every NT_STATUS line for an error", () => {
    expect(isErrorLine("NT_STATUS_SOMETHING_NEW doing x")).toBe(true);
    expect(isErrorLine("cd \\x\\: NT_STATUS_OBJECT_NAME_NOT_FOUND")).toBe(true);
  });
});
