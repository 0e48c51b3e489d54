// The small HTTP surface every long-running role has: /metrics, /healthz,
// /readyz, plus whatever routes the role adds (the aggregator's /status and
// /api/v1 later). node:http is enough; no framework.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "../logger.ts";
import type { HttpAuth, ListenAddress } from "../config/types.ts";
import { PUBLIC_PATHS, authorized, challenges } from "./auth.ts";

export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface ReadinessCheck {
  name: string;
  /** Resolves null when ready, or the reason it is not. */
  check(): Promise<string | null>;
}

export interface HttpServerOptions {
  listen: ListenAddress;
  registry: Registry;
  /** Renders /metrics from `registry` (a role may bound the render); registry.metrics() otherwise. */
  render?: () => Promise<string>;
  readiness?: ReadinessCheck[];
  routes?: Record<string, Route>;
  /** Credentials every path but /healthz asks for ([http_auth]); null or absent: none. */
  auth?: HttpAuth | null;
  logger: Logger;
}

export interface RunningHttpServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/** Readiness checks each get this long; a hung dependency means "not ready", not a hung probe. */
const READINESS_TIMEOUT_MS = 2_000;

export async function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const routes: Record<string, Route> = {
    "/metrics": async (_req, res) => {
      const body = await (opts.render?.() ?? opts.registry.metrics());
      res.writeHead(200, { "content-type": opts.registry.contentType });
      res.end(body);
    },
    "/healthz": (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
      res.end("ok\n");
    },
    "/readyz": async (_req, res) => {
      const failures = await runReadiness(opts.readiness ?? []);
      res.writeHead(failures.length === 0 ? 200 : 503, { "content-type": "text/plain; charset=utf-8" });
      res.end(failures.length === 0 ? "ready\n" : `${failures.join("\n")}\n`);
    },
    ...opts.routes,
  };

  const auth = opts.auth ?? null;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    // Before routing, so that without credentials not even which paths exist is told.
    if (auth !== null && !PUBLIC_PATHS.has(url.pathname) && !authorized(req.headers.authorization, auth)) {
      res.writeHead(401, {
        "www-authenticate": challenges(auth),
        "content-type": "text/plain; charset=utf-8",
      });
      res.end("unauthorized\n");
      return;
    }
    const route = routes[url.pathname];
    if (route === undefined) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" });
      res.end();
      return;
    }
    Promise.resolve(route(req, res, url)).catch((err: unknown) => {
      opts.logger.error({ err, path: url.pathname }, "http handler failed");
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("internal error\n");
    });
  });
  // Keep-alive sockets from scrapers must not hold shutdown open.
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    host: address.address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function runReadiness(checks: ReadinessCheck[]): Promise<string[]> {
  const results = await Promise.all(
    checks.map(async (c) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`timed out after ${READINESS_TIMEOUT_MS} ms`), READINESS_TIMEOUT_MS);
      });
      try {
        const reason = await Promise.race([c.check(), timeout]);
        return reason === null ? null : `${c.name}: ${reason}`;
      } catch (err) {
        return `${c.name}: ${String(err)}`;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return results.filter((r): r is string => r !== null);
}
