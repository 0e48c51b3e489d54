// Reads a tcpdump capture (classic pcap, Ethernet link type as on `lo`) of
// one Samba port and cuts its SMB2 exchanges into the probe's operations, so
// each operation's wire time (first request sent -> last response sent) can
// be set against the latency smbfleet reported for it.
import { readFileSync } from "node:fs";

export interface Exchange {
  /** The client's TCP port: one smbclient session, i.e. one probe run. */
  client: number;
  command: string;
  /** Microseconds, capture clock. */
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

/**
 * The SMB2 requests smbclient 4.17 sends for each probe command, counted once
 * from a capture of a healthy run (the benchmark refuses runs that differ):
 * put = open, write, close; ls = open dir, list, end of list, close, then the
 * volume query behind its "blocks available" line; get = open, stat, read,
 * close; rm = list the name (wildcards), open with delete-on-close, close,
 * end of list, close the directory.
 */
export const OPERATION_PATTERNS: Record<string, string[]> = {
  write: ["CREATE", "WRITE", "CLOSE"],
  ls_dir: ["CREATE", "QUERY_DIRECTORY", "QUERY_DIRECTORY", "CLOSE", "CREATE", "QUERY_INFO", "CLOSE"],
  read: ["CREATE", "QUERY_INFO", "READ", "CLOSE"],
  unlink: ["CREATE", "QUERY_DIRECTORY", "CREATE", "CLOSE", "QUERY_DIRECTORY", "CLOSE"],
};

/** Every SMB2 request/response pair of the capture, in request order (pairs by MessageId per connection). */
export function readExchanges(file: string): Exchange[] {
  const buf = readFileSync(file);
  if (buf.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${file}: not a little-endian microsecond pcap`);
  if (buf.readUInt32LE(20) !== 1) throw new Error(`${file}: expected Ethernet link type (capture on lo)`);
  const open = new Map<string, { command: string; at: number }>();
  const exchanges: Exchange[] = [];
  for (let off = 24; off + 16 <= buf.length;) {
    const at = buf.readUInt32LE(off) * 1e6 + buf.readUInt32LE(off + 4);
    const length = buf.readUInt32LE(off + 8);
    const pkt = buf.subarray(off + 16, off + 16 + length);
    off += 16 + length;
    let p = 14; // Ethernet
    if (pkt.length < p + 20 || pkt[p]! >> 4 !== 4) continue;
    p += (pkt[p]! & 0x0f) * 4;
    const srcPort = pkt.readUInt16BE(p);
    const dstPort = pkt.readUInt16BE(p + 2);
    p += (pkt[p + 12]! >> 4) * 4;
    p += 4; // NetBIOS session length
    if (pkt.length < p + 64 || pkt.readUInt32BE(p) !== 0xfe534d42) continue;
    const command = COMMANDS[pkt.readUInt16LE(p + 12)] ?? `CMD${pkt.readUInt16LE(p + 12)}`;
    const isResponse = (pkt.readUInt32LE(p + 16) & 1) === 1;
    const status = pkt.readUInt32LE(p + 8);
    const messageId = pkt.readBigUInt64LE(p + 24);
    const client = isResponse ? dstPort : srcPort;
    const key = `${client}:${messageId}`;
    if (!isResponse) open.set(key, { command, at });
    else if (status !== 0x103 /* STATUS_PENDING: an interim answer, the real one follows */) {
      const req = open.get(key);
      if (req === undefined) continue;
      open.delete(key);
      exchanges.push({ client, command: req.command, requestAt: req.at, responseAt: at });
    }
  }
  return exchanges.sort((a, b) => a.requestAt - b.requestAt);
}

/** Exchanges per smbclient session, sessions in the order they started. */
export function bySession(exchanges: readonly Exchange[]): Exchange[][] {
  const sessions = new Map<number, Exchange[]>();
  for (const e of exchanges) {
    const list = sessions.get(e.client) ?? [];
    list.push(e);
    sessions.set(e.client, list);
  }
  return [...sessions.values()];
}

/**
 * Wire time of each operation, ms, in the order the probe ran them, or null
 * when the capture does not have the expected shape. Login is not included:
 * its reported time starts at process spawn, which the wire cannot see.
 */
export function operationWireTimes(
  exchanges: readonly Exchange[],
  operations: ReadonlyArray<{ operation: string; count: number }>,
): Array<{ operation: string; wireMs: number }> | null {
  // Login ends with the last TREE_CONNECT (smbclient connects IPC$ first, then the share).
  let i = exchanges.findLastIndex((e) => e.command === "TREE_CONNECT") + 1;
  if (i === 0) return null;
  const out: Array<{ operation: string; wireMs: number }> = [];
  for (const { operation, count } of operations) {
    const pattern = OPERATION_PATTERNS[operation];
    if (pattern === undefined) continue; // integrity is local: no SMB traffic
    for (let n = 0; n < count; n++) {
      const segment = exchanges.slice(i, i + pattern.length);
      if (segment.map((e) => e.command).join(",") !== pattern.join(",")) return null;
      out.push({ operation, wireMs: (segment.at(-1)!.responseAt - segment[0]!.requestAt) / 1000 });
      i += pattern.length;
    }
  }
  return out;
}
