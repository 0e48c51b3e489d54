import { Registry, Counter } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../logger.ts";
import { Secret } from "../secret.ts";
import type { HttpAuth } from "../config/types.ts";
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

describe("HTTP auth", () => {
  const token = "s3cret-token-0123456789";
  async function protectedServer(auth: HttpAuth) {
    const registry = new Registry();
    new Counter({ name: "x_total", help: "x", registers: [registry] }).inc();
    server = await startHttpServer({
      listen: { host: "127.0.0.1", port: 0 },
      registry,
      readiness: [],
      auth,
      logger: silentLogger(),
    });
    return `http://127.0.0.1:${server.port}`;
  }
  const get = (url: string, authorization?: string) =>
    fetch(url, authorization === undefined ? {} : { headers: { authorization } });

  it("asks for the bearer token everywhere but /healthz, and compares it exactly", async () => {
    const base = await protectedServer({ bearerToken: new Secret(token), basic: null });
    const denied = await get(`${base}/metrics`);
    expect(denied.status).toBe(401);
    expect(denied.headers.get("www-authenticate")).toBe('Bearer realm="smbfleet"');
    expect(await denied.text()).toBe("unauthorized\n");
    const ok = await get(`${base}/metrics`, `Bearer ${token}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("x_total 1");
    expect((await get(`${base}/metrics`, `bearer ${token}`)).status).toBe(200);
    for (const wrong of [
      `Bearer ${token}x`,
      `Bearer ${token.slice(0, -1)}`,
      "Bearer ",
      token,
      `Basic ${token}`,
    ]) {
      expect((await get(`${base}/metrics`, wrong)).status).toBe(401);
    }
    expect((await get(`${base}/readyz`)).status).toBe(401);
    expect((await get(`${base}/readyz`, `Bearer ${token}`)).status).toBe(200);
    // Unknown paths too: without credentials, not even which paths exist is told.
    expect((await get(`${base}/nope`)).status).toBe(401);
    expect((await get(`${base}/nope`, `Bearer ${token}`)).status).toBe(404);
    expect((await get(`${base}/healthz`)).status).toBe(200);
  });

  it("takes basic auth, and either scheme when both are configured", async () => {
    const base = await protectedServer({
      bearerToken: new Secret(token),
      basic: { user: "prometheus", password: new Secret("pa:ss wörd") },
    });
    const basic = (user: string, password: string) =>
      `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
    expect((await get(`${base}/metrics`, basic("prometheus", "pa:ss wörd"))).status).toBe(200);
    expect((await get(`${base}/metrics`, `Bearer ${token}`)).status).toBe(200);
    expect((await get(`${base}/metrics`, basic("prometheus", "pa:ss"))).status).toBe(401);
    expect((await get(`${base}/metrics`, basic("grafana", "pa:ss wörd"))).status).toBe(401);
    const denied = await get(`${base}/metrics`);
    expect(denied.headers.get("www-authenticate")).toBe(
      'Bearer realm="smbfleet", Basic realm="smbfleet", charset="UTF-8"',
    );
  });
});
