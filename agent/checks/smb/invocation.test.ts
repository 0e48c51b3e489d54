import { describe, expect, it } from "vitest";
import type { ProbeTarget } from "../../../shared/config/types.ts";
import { OPERATIONS, type Operation } from "../../../shared/result.ts";
import { Secret } from "../../../shared/secret.ts";
import { authFileText, buildInvocation } from "./invocation.ts";
import { fakeTarget } from "../../scheduler/testing.ts";

const PASSWORD = " p@ss word %42";

function target(overrides: Partial<ProbeTarget> = {}): ProbeTarget {
  return fakeTarget({
    name: "t",
    address: "10.0.0.5",
    port: 4450,
    share: "fin ance",
    username: "probe%user",
    password: new Secret(PASSWORD),
    operationTimeoutSeconds: 2.5,
    latencyThresholdsMs: Object.fromEntries(OPERATIONS.map((op) => [op, 100])) as Record<Operation, number>,
    ...overrides,
  });
}

const PATHS = { stdbuf: "/usr/bin/stdbuf", smbclient: "/usr/bin/smbclient", authFile: "/run/x/auth" };

describe("buildInvocation", () => {
  it("never puts the password on argv; it goes in PASSWD, byte for byte", () => {
    const inv = buildInvocation(target(), PATHS, { PATH: "/bin", USER: "root", SECRET_TOKEN: "x" });
    expect(inv.args.join(" ")).not.toContain("p@ss");
    expect(inv.env["PASSWD"]).toBe(PASSWORD);
    // Only what smbclient needs is passed on; USER would be parsed as user%password by smbclient.
    expect(Object.keys(inv.env).sort()).toEqual(["LC_ALL", "PASSWD", "PATH"]);
  });

  it("passes port, domain, authentication file, timeout and share", () => {
    const inv = buildInvocation(target(), PATHS, {});
    expect(inv.file).toBe("/usr/bin/stdbuf");
    expect(inv.args.slice(0, 5)).toEqual(["-i0", "-oL", "-eL", "/usr/bin/smbclient", "-E"]);
    expect(inv.args).toContain("//10.0.0.5/fin ance");
    expect(argAfter(inv.args, "-p")).toBe("4450");
    expect(argAfter(inv.args, "-W")).toBe("CORP");
    expect(argAfter(inv.args, "-A")).toBe("/run/x/auth");
    // smbclient takes whole seconds, and lags ours by one so that ours fires first.
    expect(argAfter(inv.args, "-t")).toBe("4");
    expect(inv.args).toContain("--use-kerberos=off");
    expect(inv.args.some((a) => a.startsWith("--option=client min protocol"))).toBe(false);
  });

  it("maps kerberos, the protocol floor, and an empty domain", () => {
    const inv = buildInvocation(target({ auth: "kerberos", protocol: "SMB3", domain: "" }), PATHS, {});
    expect(inv.args).toContain("--use-kerberos=required");
    expect(inv.args).toContain("--option=client min protocol=SMB3");
    expect(inv.args).not.toContain("-W");
  });
});

describe("authFileText", () => {
  // The file's mode and its 0700 directory are pinned by local-dir-pool.test.ts (LocalDir writes it).
  it("names the username only", () => {
    expect(authFileText("probe%user")).toBe("username = probe%user\n");
  });

  it("refuses a username that would add lines to the file", () => {
    expect(() => authFileText("u\npassword = x")).toThrow(RangeError);
    expect(() => authFileText("u\rpassword = x")).toThrow(RangeError);
  });
});

function argAfter(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}
