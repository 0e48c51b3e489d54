// tcpdump on loopback, and the SMB2 exchanges in its capture, for the
// latency test (test/smb/latency.test.ts: round trips per operation) and
// bench/agent (each operation's time on the wire next to what smbfleet
// reported):
//
//   const capture = await startCapture(samba.port, file);
//   … probe runs …
//   await capture.stop();                       // everything sent so far is in the file
//   const sessions = bySession(readExchanges(file));
//   const ops = operationSegments(sessions[0]!, [{ operation: "write", count: 5 }, …]);
//
// The capture is classic pcap with the Ethernet link type (as on `lo`). TCP
// payloads are put back together per direction before SMB2 messages are cut
// out, so a message split over segments, several in one segment, and
// compound requests are all seen.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { LOOPBACK } from "./ports.ts";
import { until } from "./wait.ts";

/** tcpdump says "listening on" well within a second; a loaded machine gets ten. */
const START_TIMEOUT_MS = 10_000;
/** How long a marker packet may take to reach the file (--immediate-mode: normally a millisecond). */
const FLUSH_TIMEOUT_MS = 10_000;

export interface Exchange {
  /** The client's TCP port: one connection to the server, i.e. one smbclient session. */
  client: number;
  command: string;
  /** Microseconds, capture clock: when the request's last byte and the response's last byte were seen. */
  requestAt: number;
  responseAt: number;
}

const COMMANDS: Record<number, string> = {
  0: "NEGOTIATE",
  1: "SESSION_SETUP",
  2: "LOGOFF",
  3: "TREE_CONNECT",
  4: "TREE_DISCONNECT",
  5: "CREATE",
  6: "CLOSE",
  8: "READ",
  9: "WRITE",
  11: "IOCTL",
  14: "QUERY_DIRECTORY",
  16: "QUERY_INFO",
  17: "SET_INFO",
};

const SMB2_MAGIC = 0xfe534d42;
/** An interim answer ("working on it"); the real response with the same MessageId follows. */
const STATUS_PENDING = 0x103;

/**
 * The SMB2 requests smbclient 4.17 sends for each probe command, counted once
 * from a capture of a healthy run; operationSegments refuses sessions that
 * differ, naming what it saw instead. put = open, write, close; ls = open dir,
 * list, end of list, close, then the volume query behind its "blocks
 * available" line; get = open, stat, read, close; rm = list the name
 * (wildcards), open with delete-on-close, close, end of list, close the directory.
 */
export const OPERATION_PATTERNS: Record<string, string[]> = {
  write: ["CREATE", "WRITE", "CLOSE"],
  ls_dir: ["CREATE", "QUERY_DIRECTORY", "QUERY_DIRECTORY", "CLOSE", "CREATE", "QUERY_INFO", "CLOSE"],
  read: ["CREATE", "QUERY_INFO", "READ", "CLOSE"],
  unlink: ["CREATE", "QUERY_DIRECTORY", "CREATE", "CLOSE", "QUERY_DIRECTORY", "CLOSE"],
};

interface Direction {
  next: number | null;
  pending: Buffer;
  /** false after a gap: bytes are dropped until a segment starts with an SMB2 frame. */
  synced: boolean;
}

/** Every SMB2 request/response pair of the capture, in request order (paired by MessageId per connection). */
export function readExchanges(file: string): Exchange[] {
  const open = new Map<string, { command: string; at: number }>();
  const exchanges: Exchange[] = [];
  const onMessage = (msg: Buffer, srcPort: number, dstPort: number, at: number): void => {
    const isResponse = (msg.readUInt32LE(16) & 1) === 1;
    const client = isResponse ? dstPort : srcPort;
    const code = msg.readUInt16LE(12);
    const key = `${client}:${msg.readBigUInt64LE(24)}`;
    if (!isResponse) open.set(key, { command: COMMANDS[code] ?? `CMD${code}`, at });
    else if (msg.readUInt32LE(8) !== STATUS_PENDING) {
      const req = open.get(key);
      if (req === undefined) return;
      open.delete(key);
      exchanges.push({ client, command: req.command, requestAt: req.at, responseAt: at });
    }
  };
  forEachSmb2Message(file, onMessage);
  return exchanges.sort((a, b) => a.requestAt - b.requestAt);
}

/** Exchanges per connection, connections in the order they started. */
export function bySession(exchanges: readonly Exchange[]): Exchange[][] {
  const sessions = new Map<number, Exchange[]>();
  for (const e of exchanges) {
    const list = sessions.get(e.client) ?? [];
    list.push(e);
    sessions.set(e.client, list);
  }
  return [...sessions.values()];
}

export interface OperationSegment {
  operation: string;
  exchanges: Exchange[];
}

/**
 * A session cut into the probe's operations, in the order the probe ran them
 * (`operations` as in a ProbeResult: login, then each operation with its
 * sample count). Login is everything up to the share's TREE_CONNECT
 * (smbclient connects IPC$ first); integrity is local and has no exchanges.
 * Throws, naming the operation and the commands seen, when the session does
 * not have the expected shape.
 */
export function operationSegments(
  session: readonly Exchange[],
  operations: ReadonlyArray<{ operation: string; count: number }>,
): OperationSegment[] {
  let i = session.findLastIndex((e) => e.command === "TREE_CONNECT") + 1;
  if (i === 0) throw new Error(`no TREE_CONNECT in session: ${session.map((e) => e.command).join(",")}`);
  const out: OperationSegment[] = [];
  for (const { operation, count } of operations) {
    if (operation === "login") {
      out.push({ operation, exchanges: session.slice(0, i) });
      continue;
    }
    const pattern = OPERATION_PATTERNS[operation];
    if (pattern === undefined) continue;
    for (let n = 0; n < count; n++) {
      const segment = session.slice(i, i + pattern.length);
      const seen = segment.map((e) => e.command).join(",");
      if (seen !== pattern.join(",")) {
        throw new Error(`${operation} #${n + 1}: expected ${pattern.join(",")}, the capture has ${seen}`);
      }
      out.push({ operation, exchanges: segment });
      i += pattern.length;
    }
  }
  return out;
}

/** First request sent → last response sent, ms. */
export function wireMs(segment: OperationSegment): number {
  const { exchanges } = segment;
  if (exchanges.length === 0) return 0;
  return (exchanges.at(-1)!.responseAt - exchanges[0]!.requestAt) / 1000;
}

/**
 * SMB round trips in a run of exchanges: requests the client sent together
 * (pipelined or compounded) are one round trip; a request that arrived at
 * least gapMs after the latest response before it waited for that response
 * and starts another. Through a proxy adding D ms each way, a dependent
 * request arrives 2·D after the response it waited for, so D is a safe gap.
 */
export function roundTrips(exchanges: readonly Exchange[], gapMs: number): number {
  let trips = 0;
  exchanges.forEach((e, i) => {
    const answered = exchanges
      .slice(0, i)
      .map((x) => x.responseAt)
      .filter((at) => at <= e.requestAt);
    const latest = answered.length === 0 ? null : Math.max(...answered);
    if (i === 0 || (latest !== null && e.requestAt - latest >= gapMs * 1000)) trips += 1;
  });
  return trips;
}

export interface Capture {
  readonly file: string;
  /** Resolves once every packet sent before the call is in the file. */
  flush(): Promise<void>;
  /** flush(), then stop tcpdump. */
  stop(): Promise<void>;
}

/**
 * tcpdump -i lo on one TCP port into file, packet by packet. Needs root (or
 * CAP_NET_RAW). Resolves once a first marker packet is in the file, so a
 * capture that is not working fails here, not in the analysis.
 */
export async function startCapture(port: number, file: string): Promise<Capture> {
  // -Z root: write the file as root (tcpdump would drop to its own user and fail on a root-owned temp dir).
  // -U and --immediate-mode: every packet reaches the file at once, which flush() relies on.
  const child = spawn(
    "tcpdump",
    ["-i", "lo", "-w", file, "-U", "--immediate-mode", "-Z", "root", `tcp port ${port}`],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`tcpdump did not start in ${START_TIMEOUT_MS} ms: ${stderr}`)),
      START_TIMEOUT_MS,
    );
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run tcpdump (is it installed?): ${err.message}`, { cause: err }));
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
      if (stderr.includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited (${code}): ${stderr}`));
    });
  });

  const flush = async (): Promise<void> => {
    const marker = await markerConnection(port);
    await until(
      `tcpdump to write the marker packet from port ${marker} into ${file}`,
      () => {
        if (child.exitCode !== null) throw new Error(`tcpdump exited (${child.exitCode}): ${stderr}`);
        return hasPacketFrom(file, marker);
      },
      FLUSH_TIMEOUT_MS,
    );
  };
  const capture: Capture = {
    file,
    flush,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        await flush();
      } finally {
        child.kill("SIGINT");
        await exited;
      }
    },
  };
  try {
    await flush();
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    throw err;
  }
  return capture;
}

/** Opens and closes one TCP connection to port; returns its local port, which marks it in the capture. */
async function markerConnection(port: number): Promise<number> {
  const socket = createConnection({ host: LOOPBACK, port });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return socket.localPort!;
  } finally {
    socket.destroy();
  }
}

function hasPacketFrom(file: string, srcPort: number): boolean {
  let found = false;
  forEachTcpPacket(file, (tcp) => {
    if (tcp.srcPort === srcPort) found = true;
  });
  return found;
}

interface TcpPacket {
  at: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  syn: boolean;
  payload: Buffer;
}

function forEachTcpPacket(file: string, visit: (tcp: TcpPacket) => void): void {
  const buf = readFileSync(file);
  if (buf.length < 24) return; // tcpdump has not written its header yet
  if (buf.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${file}: not a little-endian microsecond pcap`);
  if (buf.readUInt32LE(20) !== 1) throw new Error(`${file}: expected Ethernet link type (capture on lo)`);
  for (let off = 24; off + 16 <= buf.length;) {
    const at = buf.readUInt32LE(off) * 1e6 + buf.readUInt32LE(off + 4);
    const length = buf.readUInt32LE(off + 8);
    if (off + 16 + length > buf.length) return; // a packet still being written
    const pkt = buf.subarray(off + 16, off + 16 + length);
    off += 16 + length;
    const ip = 14; // Ethernet header
    if (pkt.length < ip + 20 || pkt[ip]! >> 4 !== 4 || pkt[ip + 9] !== 6) continue; // IPv4 TCP only
    const ipEnd = Math.min(pkt.length, ip + pkt.readUInt16BE(ip + 2));
    const tcp = ip + (pkt[ip]! & 0x0f) * 4;
    const data = tcp + (pkt[tcp + 12]! >> 4) * 4;
    visit({
      at,
      srcPort: pkt.readUInt16BE(tcp),
      dstPort: pkt.readUInt16BE(tcp + 2),
      seq: pkt.readUInt32BE(tcp + 4),
      syn: (pkt[tcp + 13]! & 0x02) !== 0,
      payload: pkt.subarray(data, ipEnd),
    });
  }
}

/** Each SMB2 message (compound members separately), at the time of the segment that completed its frame. */
function forEachSmb2Message(
  file: string,
  visit: (msg: Buffer, srcPort: number, dstPort: number, at: number) => void,
): void {
  const directions = new Map<string, Direction>();
  forEachTcpPacket(file, ({ at, srcPort, dstPort, seq, syn, payload }) => {
    const key = `${srcPort}>${dstPort}`;
    if (syn) {
      directions.set(key, { next: (seq + 1) >>> 0, pending: Buffer.alloc(0), synced: true });
      return;
    }
    if (payload.length === 0) return;
    let dir = directions.get(key);
    if (dir === undefined) {
      dir = { next: seq, pending: Buffer.alloc(0), synced: false };
      directions.set(key, dir);
    }
    let data = payload;
    const ahead = (seq - dir.next!) | 0; // sequence numbers wrap at 2^32
    if (ahead < 0)
      data = data.subarray(Math.min(data.length, -ahead)); // retransmitted bytes
    else if (ahead > 0) Object.assign(dir, { pending: Buffer.alloc(0), synced: false }); // bytes never seen
    const end = (seq + payload.length) >>> 0;
    if (((end - dir.next!) | 0) > 0) dir.next = end;
    if (data.length === 0) return;
    if (!dir.synced) {
      if (data.length < 8 || data.readUInt32BE(4) !== SMB2_MAGIC) return;
      dir.synced = true;
    }
    let pending = dir.pending.length === 0 ? data : Buffer.concat([dir.pending, data]);
    while (pending.length >= 4) {
      const frameLength = pending.readUInt32BE(0) & 0xffffff; // NetBIOS session message: type 0, 24-bit length
      if (pending.length < 4 + frameLength) break;
      const frame = pending.subarray(4, 4 + frameLength);
      pending = pending.subarray(4 + frameLength);
      for (let o = 0; o + 64 <= frame.length && frame.readUInt32BE(o) === SMB2_MAGIC;) {
        visit(frame.subarray(o), srcPort, dstPort, at);
        const nextCommand = frame.readUInt32LE(o + 20);
        if (nextCommand === 0) break;
        o += nextCommand;
      }
    }
    dir.pending = Buffer.from(pending);
  });
}
