import { describe, expect, it } from "vitest";
import { formatProblem } from "./problems.ts";
import { isLoopbackHost, isValidName, parseListenAddress } from "./values.ts";

describe("parseListenAddress", () => {
  it.each([
    ["0.0.0.0:9741", { host: "0.0.0.0", port: 9741 }],
    [":9741", { host: "0.0.0.0", port: 9741 }],
    ["127.0.0.1:0", { host: "127.0.0.1", port: 0 }],
    ["[::1]:9740", { host: "::1", port: 9740 }],
    ["hq.example.com:9740", { host: "hq.example.com", port: 9740 }],
  ])("%s", (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected);
  });

  it.each(["9741", "0.0.0.0", "host:65536", "::1:9740", "a b:1", "host:-1", "host:port"])(
    "refuses %s",
    (text) => {
      expect(parseListenAddress(text)).toBeNull();
    },
  );
});

describe("isValidName", () => {
  it.each(["paris", "paris-01", "a", "site_2.hq", "x".repeat(63)])("accepts %s", (name) => {
    expect(isValidName(name)).toBe(true);
  });
  it.each(["", "Paris", "-paris", "paris-", "par is", "x".repeat(64), "pärïs"])("refuses %j", (name) => {
    expect(isValidName(name)).toBe(false);
  });
});

describe("formatProblem", () => {
  it("is file:line: key: message, warnings marked", () => {
    const p = { file: "probe.toml", line: 12, key: "probes[1].share", message: "required" } as const;
    expect(formatProblem({ ...p, severity: "error" })).toBe("probe.toml:12: probes[1].share: required");
    expect(formatProblem({ ...p, severity: "warning" })).toBe(
      "probe.toml:12: probes[1].share: warning: required",
    );
  });
});

describe("isLoopbackHost", () => {
  it.each(["127.0.0.1", "127.255.0.9", "::1", "0:0:0:0:0:0:0:1", "localhost"])("%s is loopback", (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });
  it.each(["0.0.0.0", "10.1.0.10", "::", "128.0.0.1", "127.example.com", "localhost.example.com"])(
    "%s is not",
    (host) => {
      expect(isLoopbackHost(host)).toBe(false);
    },
  );
});
