// `smbfleet migrate` and `smbfleet aggregator` as processes: migrations at
// start-up, ingest over gRPC, /metrics with site and agent labels, /readyz
// following the database, and a clean exit 0 on SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { until } from "../harness/wait.ts";
import { TestStream } from "./fixture.ts";
import { wireResults } from "./results.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

let pg: RunningPostgres;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "smbfleet-aggcmd-"));
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await pg?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function writeConfig(dbUrl: string): string {
  const file = join(dir, "aggregator.toml");
  writeFileSync(
    file,
    `[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
insecure = true

[database]
url = "${dbUrl}"
pool_size = 4
`,
  );
  return file;
}

function runCommand(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("smbfleet migrate", () => {
  it("applies the migrations once, then reports the schema current", async () => {
    const file = writeConfig(await pg.createDatabase("migrate_cmd"));
    const first = await runCommand(["migrate", "--config", file]);
    expect(first.stderr).toBe("");
    expect(first.stdout).toMatch(/^applied 0001, 0002, 0003, 0004; schema version 4\n$/m);
    expect(first.code).toBe(0);
    const second = await runCommand(["migrate", "--config", file]);
    expect(second.stdout).toMatch(/^schema is current \(version 4\)\n$/m);
    expect(second.code).toBe(0);
  });

  it("exits 1 naming the problem when the database is unreachable", async () => {
    const file = writeConfig(`postgres://postgres@127.0.0.1:1/nowhere`);
    const r = await runCommand(["migrate", "--config", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^smbfleet migrate: migration 0001_sites_agents_targets: /);
  });
});

describe("smbfleet aggregator", () => {
  it("migrates, ingests, serves /metrics and /readyz, and exits 0 on SIGTERM", async () => {
    const file = writeConfig(await pg.createDatabase("agg_cmd"));
    const child = spawn(process.execPath, [MAIN, "aggregator", "--config", file], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    const logs: Record<string, unknown>[] = [];
    let buffered = "";
    child.stdout.on("data", (b: Buffer) => {
      buffered += b.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) logs.push(JSON.parse(line) as Record<string, unknown>);
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const s = await until(
      "the aggregator's start line",
      () => logs.find((l) => l["msg"] === "aggregator started"),
      {
        timeoutMs: 15_000,
        detail: () => logs,
      },
    );
    expect(logs.some((l) => l["level"] === 40 && String(l["msg"]).startsWith("server.insecure = true"))).toBe(
      true,
    );
    const http = `http://127.0.0.1:${String(s["http"])}`;
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    expect((await fetch(`${http}/readyz`)).status).toBe(200);

    const client = new Client(`127.0.0.1:${String(s["grpc"])}`, credentials.createInsecure());
    const stream = new TestStream(client);
    stream.send({ kind: { case: "hello", value: { site: "paris", agentId: "paris-01", backlog: 4n } } });
    expect((await stream.next()).kind.case).toBe("welcome");
    stream.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(4, 2) } } });
    expect((await stream.next()).kind.value).toMatchObject({ upToSeq: 4n });

    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toContain(
      'smb_service_state{address="10.0.0.1",share="finance0",domain="CORP",site="paris",agent="paris-01"} 0',
    );
    expect(metrics).toContain(
      'smb_operation_latency_seconds_count{address="10.0.0.1",share="finance0",domain="CORP",operation="write",site="paris",agent="paris-01"} 10',
    );
    expect(metrics).toContain('smbfleet_agents_connected{site="paris"} 1');
    expect(metrics).toContain('smbfleet_ingest_results_total{site="paris",outcome="stored"} 4');
    expect(metrics).toContain('smbfleet_agent_backlog_results{site="paris",agent="paris-01"} 4');
    expect(metrics).toMatch(/^smbfleet_ingest_batch_duration_seconds_count 1$/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);

    // /readyz follows the database.
    await pg.stopServer();
    const down = await fetch(`${http}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.text()).toMatch(/^database: unreachable: /);
    await pg.startServer();
    // Its pool reconnects on the next check; that may take one more than this one.
    await until("/readyz to say 200 again", async () => (await fetch(`${http}/readyz`)).status === 200);

    child.kill("SIGTERM");
    // The open stream is ended so the agent reconnects elsewhere.
    expect((await stream.status).details).toBe("aggregator shutting down; reconnect");
    expect(await exited).toBe(0);
    expect(logs.at(-1)?.["msg"]).toBe("aggregator stopped");
    client.close();
  });
});
