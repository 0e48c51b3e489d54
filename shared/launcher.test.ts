import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LAUNCHER, agentNodeFlags } from "./launcher.ts";

// A stand-in `node` first on PATH shows what the launcher hands Node.
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "smbfleet-launcher-"));
  writeFileSync(join(dir, "node"), '#!/bin/sh\nprintf "%s\\n" "NODE_OPTIONS=$NODE_OPTIONS" "$@"\n');
  chmodSync(join(dir, "node"), 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function launch(args: string[], nodeOptions: string): string[] {
  const out = execFileSync(LAUNCHER, args, {
    env: { ...process.env, PATH: `${dir}:${process.env["PATH"] ?? ""}`, NODE_OPTIONS: nodeOptions },
    encoding: "utf8",
  });
  return out.trimEnd().split("\n");
}

describe("bin/smbfleet", () => {
  it("runs main.ts with the agent's heap limits for agent and probe", () => {
    const flags = agentNodeFlags();
    expect(flags).toEqual(["--max-semi-space-size=2", "--max-old-space-size=96"]);
    for (const role of ["agent", "probe"]) {
      const [options, main, ...rest] = launch([role, "--config", "a b.toml"], "");
      expect(options).toBe(`NODE_OPTIONS=${flags.join(" ")}`);
      expect(main).toMatch(/\/main\.ts$/);
      expect(rest).toEqual([role, "--config", "a b.toml"]);
    }
  });

  it("keeps an operator's own NODE_OPTIONS after the agent's", () => {
    const [options] = launch(["agent"], "--trace-warnings");
    expect(options).toBe(`NODE_OPTIONS=${agentNodeFlags().join(" ")} --trace-warnings`);
  });

  it("leaves the other roles on V8's defaults", () => {
    for (const role of ["aggregator", "migrate", "check-config", "pki"]) {
      expect(launch([role], "")[0]).toBe("NODE_OPTIONS=");
    }
  });
});
