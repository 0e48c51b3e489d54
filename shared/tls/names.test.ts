import { describe, expect, it } from "vitest";
import {
  dnsNameProblem,
  fleetNameProblem,
  identityUri,
  ipAddressProblem,
  parseIdentityUri,
} from "./names.ts";

describe("fleet names", () => {
  it.each(["paris", "paris-01", "a", "hq.berlin_2", "0", "x".repeat(63)])("accepts %s", (name) => {
    expect(fleetNameProblem("site", name)).toBeNull();
  });

  it.each(["", "Paris", "par is", "paris:01", "a/b", ".hidden", "-x", "_x", "x".repeat(64), "é", "a\n"])(
    "refuses %j with the rule in the message",
    (name) => {
      expect(fleetNameProblem("agent", name)).toBe(
        `agent name ${JSON.stringify(name)} is invalid: it must be 1-63 characters of lowercase letters, digits, '-', '_' and '.', starting with a letter or digit`,
      );
    },
  );
});

describe("identity URI", () => {
  it("round-trips a site and agent", () => {
    const uri = identityUri({ site: "paris", agent: "paris-01" });
    expect(uri).toBe("urn:smbfleet:site:paris:agent:paris-01");
    expect(parseIdentityUri(uri)).toEqual({ site: "paris", agent: "paris-01" });
  });

  it.each([
    "urn:smbfleet:site:paris",
    "urn:smbfleet:site:paris:agent:",
    "urn:smbfleet:site:Paris:agent:a",
    "urn:smbfleet:site:paris:agent:a:extra",
    "urn:smbfleet:agent:a:site:paris",
    "URN:SMBFLEET:site:paris:agent:a",
    " urn:smbfleet:site:paris:agent:a",
    "https://example.com/",
  ])("refuses %s", (uri) => {
    expect(parseIdentityUri(uri)).toBeNull();
  });
});

describe("server names", () => {
  it.each(["localhost", "hq.example.com", "*.example.com", "a-1.b"])("accepts DNS name %s", (name) => {
    expect(dnsNameProblem(name)).toBeNull();
  });
  it.each(["", "-a.com", "a..b", "a_b.com", "*", "a.*.com", "hq example"])("refuses DNS name %j", (name) => {
    expect(dnsNameProblem(name)).toMatch(/^DNS name .* is invalid/);
  });
  it.each(["127.0.0.1", "::1", "fd00::5", "::ffff:10.0.0.1"])("accepts IP %s", (ip) => {
    expect(ipAddressProblem(ip)).toBeNull();
  });
  it.each(["localhost", "300.1.1.1", "fe80::1%eth0", ""])("refuses IP %j", (ip) => {
    expect(ipAddressProblem(ip)).toBe(`IP address ${JSON.stringify(ip)} is invalid`);
  });
});
