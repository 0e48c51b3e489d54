// The measured process of bench/drain: an agent that opens a full buffer,
// connects, and drains it. It prints one JSON line: when it was welcomed,
// when the backlog reached zero, its peak RSS and CPU. Bounded by a deadline.
import { openBuffer } from "../../agent/buffer/buffer.ts";
import type { ShipperOptions } from "../../agent/pusher/options.ts";
import { startShipper } from "../../agent/pusher/shipper.ts";
import type { ShipperStatus } from "../../agent/pusher/state.ts";
import { createLogger } from "../../shared/logger.ts";

const [bufferPath, url, ca, cert, key, deadlineMs, optionsJson] = process.argv.slice(2);
if (
  bufferPath === undefined ||
  url === undefined ||
  ca === undefined ||
  cert === undefined ||
  key === undefined
) {
  throw new Error("usage: agent.ts BUFFER URL CA CERT KEY [DEADLINE_MS]");
}
const started = performance.now();
const buffer = openBuffer(bufferPath, { maxBytes: 4 * 1024 ** 3, maxAgeSeconds: 30 * 86_400 });
const opened = performance.now();
const startBacklog = buffer.backlog().count;
let welcomedAt: number | null = null;
let drainedAt: number | null = null;
let resolveDrained!: () => void;
const drained = new Promise<void>((resolve) => (resolveDrained = resolve));
const abort = new AbortController();

const shipper = startShipper(
  {
    buffer,
    aggregator: { url, ca, cert, key, insecure: false },
    site: "bench",
    agentId: "bench-01",
    agentVersion: "bench",
    targets: [],
    // stdout carries the report; the agent's warnings (reconnects, refusals) go to stderr.
    logger: createLogger("agent", { level: "warn", destination: process.stderr }),
    options: JSON.parse(optionsJson ?? "{}") as Partial<ShipperOptions>,
    metrics: {
      update(s) {
        if (s.connected && welcomedAt === null) welcomedAt = performance.now();
        if (s.backlog === 0 && drainedAt === null && welcomedAt !== null) {
          drainedAt = performance.now();
          resolveDrained();
        }
      },
    },
  },
  abort.signal,
);

export interface AgentReport {
  startBacklog: number;
  left: number;
  openMs: number;
  connectMs: number | null;
  drainMs: number | null;
  maxRssMb: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  status: ShipperStatus;
}

const deadline = setTimeout(resolveDrained, Number(deadlineMs ?? 300_000));
await drained;
clearTimeout(deadline);
const cpu = process.cpuUsage();
const usage = process.resourceUsage();
await shipper.stop();
const left = buffer.backlog().count;
buffer.close();
const report: AgentReport = {
  startBacklog,
  left,
  openMs: opened - started,
  connectMs: welcomedAt === null ? null : welcomedAt - started,
  drainMs: welcomedAt === null || drainedAt === null ? null : drainedAt - welcomedAt,
  maxRssMb: usage.maxRSS / 1024,
  cpuUserMs: cpu.user / 1000,
  cpuSystemMs: cpu.system / 1000,
  status: shipper.status(),
};
process.stdout.write(JSON.stringify(report) + "\n");
