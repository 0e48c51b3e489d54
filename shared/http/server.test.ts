import { Registry, Counter } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../logger.ts";
import { startHttpServer, type RunningHttpServer } from "./server.ts";

let server: RunningHttpServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("startHttpServer", () => {
  it("serves /metrics, /healthz and a failing /readyz", async () => {
    const registry = new Registry();
    new Counter({ name: "x_total", help: "x", registers: [registry] }).inc(3);
    let ready: string | null = "database: not reachable";
    server = await startHttpServer({
      listen: { host: "127.0.0.1", port: 0 },
      registry,
      readiness: [{ name: "db", check: () => Promise.resolve(ready) }],
      logger: silentLogger(),
    });
    const base = `http://127.0.0.1:${server.port}`;
    expect(await (await fetch(`${base}/metrics`)).text()).toContain("x_total 3");
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toContain("db: database: not reachable");
    ready = null;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(405);
  });
});
