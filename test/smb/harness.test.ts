// The Samba and delay-proxy harness itself: what other tests, the demo and
// the benchmarks rely on.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDelayProxy } from "../harness/delay-proxy.ts";
import { processGroupMembers } from "../harness/ports.ts";
import { startSamba } from "../harness/samba.ts";
import { until } from "../harness/wait.ts";

describe("startSamba", () => {
  it("runs several instances at once, each on its own port and dir, and stop() leaves nothing", async () => {
    const [a, b] = await Promise.all([startSamba(), startSamba()]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.dir).not.toBe(b.dir);
      for (const s of [a, b]) {
        const r = spawnSync(
          "smbclient",
          [`//${s.host}/${s.shares.readonly}`, "-p", String(s.port), "-U", s.users[1]!.name, "-c", "ls"],
          {
            env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", PASSWD: s.users[1]!.password },
            encoding: "utf8",
          },
        );
        expect(r.stdout).toContain("README.txt");
      }
    } finally {
      // Hold a connection open so that smbd has forked a per-connection child when we stop it.
      const held = createConnection({ host: a.host, port: a.port });
      await new Promise((resolve) => held.once("connect", resolve));
      await until(
        "smbd to fork a child for the held connection",
        () => processGroupMembers(a.pgid).length > 1,
        {
          detail: () => processGroupMembers(a.pgid),
        },
      );
      await Promise.all([a.stop(), b.stop()]);
      held.destroy();
    }
    for (const s of [a, b]) {
      expect(processGroupMembers(s.pgid)).toEqual([]);
      expect(existsSync(s.dir)).toBe(false);
    }
    // stop() is idempotent.
    await a.stop();
  });

  it("a watchdog stops smbd and removes its dir when the process that started it dies without stop()", async () => {
    const script = `
      import { startSamba } from ${JSON.stringify(new URL("../harness/samba.ts", import.meta.url).pathname)};
      const s = await startSamba();
      process.stdout.write(JSON.stringify({ pgid: s.pgid, dir: s.dir }) + "\\n", () => process.kill(process.pid, "SIGKILL"));
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await new Promise((resolve) => child.once("exit", resolve));
    const { pgid, dir } = JSON.parse(out) as { pgid: number; dir: string };
    // Polls every 0.5 s, then SIGTERM, 0.5 s grace, SIGKILL.
    await until(
      "the watchdog to stop smbd and remove its dir",
      () => processGroupMembers(pgid).length === 0 && !existsSync(dir),
      {
        timeoutMs: 10_000,
        pollMs: 50,
        detail: () => ({ alive: processGroupMembers(pgid), dir: existsSync(dir) }),
      },
    );
  });

  it("says so clearly when smbd cannot be run, and leaves no temp dir", async () => {
    const parentDir = mkdtempSync(join(tmpdir(), "smbfleet-harness-"));
    try {
      await expect(startSamba({ smbdPath: "/nonexistent/smbd", parentDir })).rejects.toThrow(
        "startSamba: cannot run /nonexistent/smbd (is the samba package installed?)",
      );
      expect(readdirSync(parentDir)).toEqual([]);
    } finally {
      rmSync(parentDir, { recursive: true, force: true });
    }
  });
});

describe("startDelayProxy", () => {
  let echo: Server;
  let echoPort = 0;
  /** Everything the echo server received, over all connections: what the proxy passed on. */
  let echoed = "";
  let echoAccepted = 0;

  beforeAll(async () => {
    echo = createServer((s) => {
      echoAccepted++;
      s.setNoDelay(true);
      s.on("data", (d) => {
        echoed += d.toString();
        s.write(d);
      });
      s.on("error", () => s.destroy());
    });
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", () => resolve()));
    echoPort = (echo.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  async function connect(port: number): Promise<Socket> {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.setNoDelay(true);
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return socket;
  }

  async function roundTrip(socket: Socket, payload: string): Promise<number> {
    const t = performance.now();
    socket.write(payload);
    let got = "";
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer) => {
        got += d.toString();
        if (got.length >= payload.length) {
          socket.off("data", onData);
          resolve();
        }
      };
      socket.on("data", onData);
    });
    expect(got).toBe(payload);
    return performance.now() - t;
  }

  it("adds the delay each way, and a burst is not stretched", async () => {
    const proxy = await startDelayProxy({ target: { host: "127.0.0.1", port: echoPort }, delayMs: 20 });
    try {
      const socket = await connect(proxy.port);
      const rtt = await roundTrip(socket, "ping");
      expect(rtt).toBeGreaterThanOrEqual(40);
      // Ten chunks sent at once arrive ~2·D later together, not 10·2·D later.
      const t = performance.now();
      let received = "";
      const all = new Promise<void>((resolve) =>
        socket.on("data", (d: Buffer) => {
          received += d.toString();
          if (received.length >= 10) resolve();
        }),
      );
      for (let i = 0; i < 10; i++) socket.write(String(i));
      await all;
      expect(received).toBe("0123456789");
      expect(performance.now() - t).toBeLessThan(10 * 40);
      socket.destroy();
      expect(proxy.connectionsAccepted).toBe(1);
    } finally {
      await proxy.stop();
    }
  });

  it("keeps order when the delay is lowered mid-stream", async () => {
    const proxy = await startDelayProxy({ target: { host: "127.0.0.1", port: echoPort }, delayMs: 50 });
    try {
      const socket = await connect(proxy.port);
      let received = "";
      const done = new Promise<void>((resolve) =>
        socket.on("data", (d: Buffer) => {
          received += d.toString();
          if (received.length >= 2) resolve();
        }),
      );
      socket.write("a");
      await until("the proxy to hold the first byte", () => proxy.bytesFromClients === 1);
      proxy.setDelay(0);
      socket.write("b");
      await done;
      expect(received).toBe("ab");
      socket.destroy();
    } finally {
      await proxy.stop();
    }
  });

  it("cut() closes open connections and resets new ones until restore()", async () => {
    const proxy = await startDelayProxy({ target: { host: "127.0.0.1", port: echoPort } });
    try {
      const socket = await connect(proxy.port);
      await roundTrip(socket, "x");
      const closed = new Promise((resolve) => socket.once("close", resolve));
      proxy.cut();
      await closed;
      const refused = createConnection({ host: "127.0.0.1", port: proxy.port });
      const error = await new Promise<unknown>((resolve) => {
        refused.once("error", resolve);
        refused.once("close", () => resolve(null));
      });
      expect(error === null || (error as NodeJS.ErrnoException).code === "ECONNRESET").toBe(true);
      proxy.restore();
      const again = await connect(proxy.port);
      await roundTrip(again, "back");
      again.destroy();
      expect(proxy.connectionsAccepted).toBe(3);
    } finally {
      await proxy.stop();
    }
  });

  it("blackhole accepts TCP and never answers", async () => {
    const proxy = await startDelayProxy({ target: { host: "127.0.0.1", port: echoPort }, mode: "blackhole" });
    try {
      const socket = await connect(proxy.port);
      let got = 0;
      socket.on("data", (d: Buffer) => (got += d.length));
      const connectionsToEcho = echoAccepted;
      socket.write("hello?");
      await until("the proxy to take the bytes", () => proxy.bytesFromClients === 6);
      // Nothing was passed on: no connection towards the server, so no answer can come.
      expect(echoAccepted).toBe(connectionsToEcho);
      expect(got).toBe(0);
      expect(proxy.connectionsOpen).toBe(1);
      socket.destroy();
    } finally {
      await proxy.stop();
    }
  });

  it("freeze() stops an open connection mid-stream", async () => {
    const proxy = await startDelayProxy({ target: { host: "127.0.0.1", port: echoPort } });
    try {
      const socket = await connect(proxy.port);
      await roundTrip(socket, "before");
      proxy.freeze();
      let got = 0;
      socket.on("data", (d: Buffer) => (got += d.length));
      const seenBefore = echoed;
      socket.write("during");
      await until("the proxy to take the bytes", () => proxy.bytesFromClients === "before".length + 6);
      // Dropped as it arrived: the server never saw it, so no answer can come.
      expect(echoed).toBe(seenBefore);
      expect(got).toBe(0);
      socket.destroy();
    } finally {
      await proxy.stop();
    }
  });
});
