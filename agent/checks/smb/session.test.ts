// The session's process handling against a stand-in for smbclient (a small
// Node script speaking the same delimiter protocol), so that timeouts, kills,
// output caps and aborts are tested deterministically. The real smbclient is
// exercised in test/smb/.
import { describe, expect, it } from "vitest";
import { SmbclientSession, type SessionSpec } from "./session.ts";

const FAKE_SMBCLIENT = `
process.stderr.write('Try "help" to get a list of possible commands.\\n');
if (process.argv.includes("--refuse")) {
  process.stderr.write("do_connect: Connection to 127.0.0.1 failed (Error NT_STATUS_CONNECTION_REFUSED)\\n");
  process.exit(1);
}
let buf = "";
let hung = false;
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => {
  buf += d;
  let i;
  while (!hung && (i = buf.indexOf("\\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    const [cmd, arg] = line.split(" ");
    if (cmd === "lcd") process.stderr.write("chdir to " + arg + " failed (Not a directory)\\n");
    else if (cmd === "say") process.stderr.write(arg + "\\n");
    else if (cmd === "hang") hung = true;
    else if (cmd === "flood") { const chunk = "x".repeat(65536) + "\\n"; const go = () => { while (process.stderr.write(chunk)); process.stderr.once("drain", go); }; go(); hung = true; }
    else if (cmd === "stubborn") process.on("SIGTERM", () => {});
    else if (cmd === "later") setTimeout(() => process.stderr.write("NT_STATUS_CONNECTION_DISCONNECTED\\n"), 10);
    else if (cmd === "die") process.exit(Number(arg));
  }
});
process.stdin.on("end", () => process.exit(0));
`;

function spec(extra: string[] = [], over: Partial<SessionSpec> = {}): SessionSpec {
  return {
    file: process.execPath,
    args: ["-e", FAKE_SMBCLIENT, "--", ...extra],
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
    maxOutputBytesPerCommand: 1 << 20,
    killGraceMs: 100,
    ...over,
  };
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const never = new AbortController().signal;

describe("SmbclientSession", () => {
  it("times login from spawn and each command from its write to its delimiter, output in order", async () => {
    const s = new SmbclientSession(spec(), 5_000, never);
    const login = await s.login();
    expect(login).toMatchObject({ status: "ok", lines: [] });
    expect(login.elapsedMs).toBeGreaterThan(0);
    const out = await s.exec("say one\nsay two", 5_000);
    expect(out).toMatchObject({ status: "ok", lines: ["one", "two"] });
    await s.quit(1_000);
    expect(s.isClosed).toBe(true);
  });

  it("reports what the process said when it exits before answering", async () => {
    const s = new SmbclientSession(spec(["--refuse"]), 5_000, never);
    const login = await s.login();
    expect(login.status).toBe("exited");
    expect(login.lines).toEqual([
      "do_connect: Connection to 127.0.0.1 failed (Error NT_STATUS_CONNECTION_REFUSED)",
    ]);
    expect(login.detail).toBe("smbclient exited with code 1");
  });

  it("keeps a notice printed between commands for the next outcome", async () => {
    const s = new SmbclientSession(spec(), 5_000, never);
    await s.login();
    await s.exec("later", 5_000);
    await new Promise((r) => setTimeout(r, 100));
    const next = await s.exec("die 3", 5_000);
    expect(next.status).toBe("exited");
    expect(next.lines).toEqual(["NT_STATUS_CONNECTION_DISCONNECTED"]);
    expect(next.detail).toBe("smbclient exited with code 3");
  });

  it("kills the process group on a command timeout and settles once it is gone", async () => {
    const s = new SmbclientSession(spec(), 5_000, never);
    await s.login();
    const out = await s.exec("hang", 150);
    expect(out.status).toBe("timeout");
    expect(out.elapsedMs).toBeGreaterThanOrEqual(149);
    expect(out.detail).toBe("no answer within 150 ms");
    expect(s.isClosed).toBe(true);
    expect(alive(s.pid)).toBe(false);
  });

  it("SIGKILLs a process that ignores SIGTERM after the grace period", async () => {
    const s = new SmbclientSession(spec(), 5_000, never);
    await s.login();
    await s.exec("stubborn", 5_000);
    const out = await s.exec("hang", 100);
    expect(out.status).toBe("timeout");
    expect(alive(s.pid)).toBe(false);
  });

  it("kills a runaway that prints more than the cap", async () => {
    const s = new SmbclientSession(spec([], { maxOutputBytesPerCommand: 256 * 1024 }), 5_000, never);
    await s.login();
    const out = await s.exec("flood", 10_000);
    expect(out.status).toBe("overflow");
    expect(out.detail).toBe(`more than ${256 * 1024} bytes of output`);
    expect(alive(s.pid)).toBe(false);
  });

  it("the abort signal kills a running command, and later commands do not start", async () => {
    const ac = new AbortController();
    const s = new SmbclientSession(spec(), 5_000, ac.signal);
    await s.login();
    const running = s.exec("hang", 10_000);
    ac.abort(new Error("shutdown"));
    const out = await running;
    expect(out.status).toBe("aborted");
    expect(out.detail).toContain("shutdown");
    expect((await s.exec("say x", 1_000)).status).toBe("aborted");
    expect(alive(s.pid)).toBe(false);
  });

  it("a program that cannot be started settles as spawn_failed", async () => {
    const s = new SmbclientSession(spec([], { file: "/nonexistent/stdbuf" }), 5_000, never);
    const login = await s.login();
    expect(login.status).toBe("spawn_failed");
    expect(login.detail).toContain("could not start /nonexistent/stdbuf");
  });
});
