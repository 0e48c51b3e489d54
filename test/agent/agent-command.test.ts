// `node main.ts agent --config F` as an operator runs it, against real Samba:
// metrics with true latencies, health and readiness, redacted config log,
// and a clean SIGTERM (exit 0, no smbclient left).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentProcess, type AgentProcess } from "../../scripts/agent-process.ts";
import { writeDemoConfig } from "../../scripts/demo-config.ts";
import { parseMetrics, select } from "../../scripts/prom-text.ts";
import { startSamba, type SambaServer } from "../harness/samba.ts";
import { until } from "../harness/wait.ts";
import { smbclientsFor } from "./processes.ts";

let samba: SambaServer;
let dir: string;
let agent: AgentProcess | undefined;

beforeAll(async () => {
  samba = await startSamba();
  dir = mkdtempSync(join(tmpdir(), "smbfleet-agent-test-"));
});

afterAll(async () => {
  await agent?.stop("SIGKILL").catch(() => undefined);
  await samba?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("smbfleet agent", () => {
  it("probes real Samba, serves metrics and health, and stops cleanly on SIGTERM", async () => {
    const config = writeDemoConfig(samba, dir, {
      targets: [{ name: "rw", share: samba.shares.writable, interval: 1 }],
      site: "paris",
    });
    agent = await startAgentProcess(config);
    const labels = { address: samba.host, share: "writable", domain: samba.workgroup, site: "paris" };

    const samples = await until(
      "a healthy result with latency samples",
      async () => {
        const s = parseMetrics(await (await fetch(`${agent!.url}/metrics`)).text());
        const state = select(s, "smb_service_state", labels)[0];
        const writes = select(s, "smb_operation_latency_seconds_count", { ...labels, operation: "write" })[0];
        return state?.value === 0 && (writes?.value ?? 0) >= 5 ? s : null;
      },
      { pollMs: 200 },
    );
    for (const op of ["login", "write", "ls_dir", "read", "unlink"]) {
      const count = select(samples, "smb_operation_latency_seconds_count", { ...labels, operation: op })[0];
      const sum = select(samples, "smb_operation_latency_seconds_sum", { ...labels, operation: op })[0];
      expect(count?.value, op).toBeGreaterThan(0);
      // Seconds, not milliseconds: a loopback operation is far below one second.
      expect(sum!.value / count!.value, op).toBeLessThan(1);
      expect(select(samples, "smb_operation_failed_total", { ...labels, operation: op })[0]?.value, op).toBe(
        0,
      );
    }

    expect((await fetch(`${agent.url}/healthz`)).status).toBe(200);
    await until("ready", async () => (await fetch(`${agent!.url}/readyz`)).status === 200, { pollMs: 200 });

    // The effective config is logged once, with the password redacted.
    const password = samba.users[0]!.password;
    const effective = agent.logs.find((l) => l.msg === "effective config");
    expect(JSON.stringify(effective)).toContain('"password":"<redacted>"');
    expect(agent.logs.some((l) => JSON.stringify(l).includes(password))).toBe(false);

    const code = await agent.stop("SIGTERM");
    expect(code).toBe(0);
    expect(agent.logs.at(-1)?.msg).toBe("agent stopped");
    expect(smbclientsFor(samba.port)).toEqual([]);
    agent = undefined;
  });

  it("aborts a run in flight on SIGTERM: exit 0 quickly, no smbclient left", async () => {
    /** The silent target's run timeout: a stop that waited for the run would take this long. */
    const RUN_TIMEOUT_S = 60;
    // A server that accepts TCP and never answers keeps a run in flight for its whole timeout.
    const held: Socket[] = [];
    const silent = createServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const config = writeDemoConfig(samba, dir, {
        targets: [{ name: "silent", share: "writable", interval: 3, timeout: RUN_TIMEOUT_S, port }],
      });
      agent = await startAgentProcess(config);
      await until(
        "an smbclient connected to the silent server",
        () => smbclientsFor(port).length > 0 && held.length > 0,
        { timeoutMs: 10_000, pollMs: 200 },
      );
      const t0 = Date.now();
      expect(await agent.stop("SIGTERM")).toBe(0);
      // Far below the run's own timeout: the run was aborted, not waited for.
      expect(Date.now() - t0).toBeLessThan((RUN_TIMEOUT_S * 1000) / 2);
      expect(smbclientsFor(port)).toEqual([]);
      agent = undefined;
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it("refuses to start on a config error, printing each problem with file and line", () => {
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, '[agent]\nsite = "paris"\ncolour = "blue"\n\n[[probes]]\naddress = "127.0.0.1"\n');
    const r = spawnSync(process.execPath, ["main.ts", "agent", "--config", bad], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${bad}:3: agent\\.colour: .+`));
    expect(r.stderr).toMatch(new RegExp(`${bad}:5: probes\\[0\\]\\.share: .+`));
    expect(r.stdout).toBe("");
  });
});
