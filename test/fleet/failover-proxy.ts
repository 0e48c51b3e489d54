// One address in front of several aggregator replicas, as a TCP load balancer
// would be: each new connection goes to the next backend in turn, and to the
// one after it when that one refuses (a killed replica). A connection is tied
// to its backend for life: when the backend dies, the client's connection is
// closed and the client must reconnect, which lands on a live replica.
// TCP level only (TLS passes through untouched), loopback only.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { LOOPBACK } from "../harness/ports.ts";

export interface Backend {
  host: string;
  port: number;
}

export interface FailoverProxy {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** Connections handed to each backend (by index), ever. */
  readonly routed: number[];
  /** Client connections refused because no backend accepted. */
  readonly refused: number;
  /** Client connections open now, by backend index. */
  openTo(index: number): number;
  stop(): Promise<void>;
}

export async function startFailoverProxy(backends: readonly Backend[]): Promise<FailoverProxy> {
  const routed = backends.map(() => 0);
  const open = backends.map(() => new Set<Socket>());
  const all = new Set<Socket>();
  let refused = 0;
  let next = 0;

  const connectTo = (index: number): Promise<Socket | null> =>
    new Promise((resolve) => {
      const b = backends[index]!;
      const upstream = createConnection({ host: b.host, port: b.port });
      upstream.once("connect", () => {
        upstream.removeAllListeners("error");
        resolve(upstream);
      });
      upstream.once("error", () => {
        upstream.destroy();
        resolve(null);
      });
    });

  const server: Server = createServer((client) => {
    all.add(client);
    client.once("close", () => all.delete(client));
    client.on("error", () => client.destroy());
    client.pause();
    void (async () => {
      const start = next;
      next = (next + 1) % backends.length;
      for (let k = 0; k < backends.length; k++) {
        const index = (start + k) % backends.length;
        const upstream = await connectTo(index);
        if (upstream === null) continue;
        if (client.destroyed) return void upstream.destroy();
        routed[index]!++;
        open[index]!.add(upstream);
        all.add(upstream);
        upstream.setNoDelay(true);
        client.setNoDelay(true);
        upstream.once("close", () => {
          open[index]!.delete(upstream);
          all.delete(upstream);
          client.destroy();
        });
        upstream.on("error", () => upstream.destroy());
        client.once("close", () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
        return;
      }
      refused++;
      client.destroy();
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("failover proxy: no TCP address");
  return {
    host: LOOPBACK,
    port: address.port,
    url: `${LOOPBACK}:${address.port}`,
    routed,
    get refused() {
      return refused;
    },
    openTo: (index) => [...(open[index] ?? [])].filter((s) => !s.destroyed).length,
    stop() {
      for (const s of all) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
