// A TCP proxy on loopback that adds latency and cuts links, for latency and
// fault tests:
//
//   const proxy = await startDelayProxy({ target: { host: samba.host, port: samba.port }, delayMs: 10 });
//   // connect to proxy.host:proxy.port instead of the target
//   proxy.setDelay(25);  proxy.cut();  proxy.restore();  proxy.setMode("blackhole");
//   await proxy.stop();
//
// Every chunk is delivered delayMs after it arrived, in each direction, so a
// request/response round trip costs 2·delayMs more. Each chunk is scheduled
// for arrival at now + delay (not after the previous chunk's delay), so a
// burst of chunks is not stretched; order is kept because due times never go
// backwards (if the delay is lowered, later chunks wait for earlier ones).
import { createServer, createConnection, type Server, type Socket } from "node:net";
import { LOOPBACK } from "./ports.ts";

/**
 * forward: proxy with the current delay. cut: new connections are accepted and
 * reset at once. blackhole: new connections are accepted and never answered
 * (what a hung server or a silently dropping firewall looks like).
 */
export type DelayProxyMode = "forward" | "cut" | "blackhole";

export interface DelayProxyOptions {
  target: { host: string; port: number };
  delayMs?: number;
  mode?: DelayProxyMode;
  /** Listen address; loopback only. */
  host?: string;
  /**
   * How long before a chunk is due the proxy stops sleeping and polls instead
   * (setTimeout alone fires up to ~1 ms late). Polling costs CPU, which on a
   * busy machine the proxied processes may need more; 0 turns it off.
   */
  spinWindowMs?: number;
}

export interface DelayProxy {
  host: string;
  port: number;
  readonly delayMs: number;
  readonly mode: DelayProxyMode;
  /** Client connections accepted since start, in every mode. */
  readonly connectionsAccepted: number;
  /** Client connections open now. */
  readonly connectionsOpen: number;
  /** Bytes received from clients, in every mode (also those a blackhole or a freeze drops). */
  readonly bytesFromClients: number;
  setDelay(ms: number): void;
  setMode(mode: DelayProxyMode): void;
  /** Destroys every open connection and resets new ones until restore(). */
  cut(): void;
  /**
   * Open connections stop delivering anything, both ways, and new ones are
   * blackholed: a server that hangs mid-session. restore() ends it.
   */
  freeze(): void;
  /** Back to forwarding (cut connections stay cut, frozen ones drop what they held; clients reconnect). */
  restore(): void;
  /** Closes the listener and every connection. */
  stop(): Promise<void>;
}

/**
 * setTimeout fires up to ~1 ms late; a test that compares a delayed exchange
 * with 2·D in absolute milliseconds cannot afford that. So by default the last
 * stretch before a chunk is due is waited with setImmediate polling: it costs
 * CPU in the proxy only, for at most this long per chunk. (The latency test
 * compares two delays, where the lateness cancels, and turns this off.)
 */
const DEFAULT_SPIN_WINDOW_MS = 1.5;

export async function startDelayProxy(opts: DelayProxyOptions): Promise<DelayProxy> {
  let delayMs = opts.delayMs ?? 0;
  let mode: DelayProxyMode = opts.mode ?? "forward";
  let accepted = 0;
  let fromClients = 0;
  let frozen = false;
  const spinWindowMs = opts.spinWindowMs ?? DEFAULT_SPIN_WINDOW_MS;
  const open = new Set<Socket>();

  const server: Server = createServer((client) => {
    accepted++;
    open.add(client);
    client.once("close", () => open.delete(client));
    client.on("error", () => client.destroy());
    switch (mode) {
      case "cut":
        client.resetAndDestroy();
        return;
      case "blackhole":
        // Read and drop what the client sends, so its writes never block; answer nothing.
        client.on("data", (chunk: Buffer) => void (fromClients += chunk.length));
        return;
      case "forward":
        forward(client);
        return;
    }
  });

  function forward(client: Socket): void {
    client.setNoDelay(true);
    const upstream = createConnection({ host: opts.target.host, port: opts.target.port });
    upstream.setNoDelay(true);
    open.add(upstream);
    upstream.once("close", () => open.delete(upstream));
    const delay = () => (frozen ? Number.POSITIVE_INFINITY : delayMs);
    const toUpstream = new DelayedPipe(upstream, delay, spinWindowMs);
    const toClient = new DelayedPipe(client, delay, spinWindowMs);
    client.on("data", (chunk: Buffer) => {
      fromClients += chunk.length;
      toUpstream.push(chunk);
    });
    upstream.on("data", (chunk: Buffer) => toClient.push(chunk));
    // A half-close is passed on after the data before it, keeping its place in the order.
    client.on("end", () => toUpstream.end());
    upstream.on("end", () => toClient.end());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    upstream.on("error", () => client.destroy());
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, opts.host ?? LOOPBACK, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("startDelayProxy: no TCP address");

  const destroyAll = () => {
    for (const socket of open) socket.destroy();
    open.clear();
  };

  return {
    host: address.address,
    port: address.port,
    get delayMs() {
      return delayMs;
    },
    get mode() {
      return mode;
    },
    get connectionsAccepted() {
      return accepted;
    },
    get connectionsOpen() {
      return [...open].filter((s) => !s.destroyed).length;
    },
    get bytesFromClients() {
      return fromClients;
    },
    setDelay(ms: number) {
      if (!(ms >= 0)) throw new RangeError(`delay must be >= 0 ms, got ${ms}`);
      delayMs = ms;
    },
    setMode(next: DelayProxyMode) {
      mode = next;
    },
    cut() {
      mode = "cut";
      destroyAll();
    },
    freeze() {
      frozen = true;
      mode = "blackhole";
    },
    restore() {
      frozen = false;
      mode = "forward";
    },
    stop() {
      destroyAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One direction of a proxied connection: chunks leave in order, each at its arrival time plus the delay. */
class DelayedPipe {
  readonly #out: Socket;
  readonly #delay: () => number;
  readonly #spinWindowMs: number;
  readonly #queue: { due: number; chunk: Buffer | null }[] = [];
  #lastDue = 0;
  #scheduled = false;

  constructor(out: Socket, delay: () => number, spinWindowMs: number) {
    this.#out = out;
    this.#delay = delay;
    this.#spinWindowMs = spinWindowMs;
  }

  push(chunk: Buffer): void {
    this.#enqueue(chunk);
  }

  /** Half-close after everything queued so far. */
  end(): void {
    this.#enqueue(null);
  }

  #enqueue(chunk: Buffer | null): void {
    // Frozen: what arrives is dropped (held forever, as a hung peer would).
    if (this.#delay() === Number.POSITIVE_INFINITY) return;
    const due = Math.max(performance.now() + this.#delay(), this.#lastDue);
    this.#lastDue = due;
    this.#queue.push({ due, chunk });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    const head = this.#queue[0];
    if (head === undefined) return;
    this.#scheduled = true;
    const wait = head.due - performance.now();
    if (wait <= 0) setImmediate(() => this.#flush());
    else if (wait > this.#spinWindowMs) setTimeout(() => this.#flush(), wait - this.#spinWindowMs);
    else if (this.#spinWindowMs > 0) setImmediate(() => this.#flush());
    else setTimeout(() => this.#flush(), wait);
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#delay() === Number.POSITIVE_INFINITY) {
      this.#queue.length = 0;
      return;
    }
    const now = performance.now();
    while (this.#queue.length > 0 && this.#queue[0]!.due <= now) {
      const { chunk } = this.#queue.shift()!;
      if (this.#out.destroyed) continue;
      if (chunk === null) this.#out.end();
      else this.#out.write(chunk);
    }
    this.#schedule();
  }
}
