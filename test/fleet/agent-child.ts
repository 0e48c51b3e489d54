// A synthetic agent in its own process, so that a test can SIGKILL it with a
// backlog: the real buffer and sender (test/fleet/synthetic-agent.ts), fed
// with `perTick` results every `everyMs`. After each result is committed it
// prints "C <seq> <marker>" with a synchronous write, so every line the test
// reads names a result that is in the buffer file. SIGTERM stops producing,
// stops the sender (a short grace for acks) and closes the buffer.
// Bounded: it stops producing after maxTicks and exits after maxRunMs.
import { writeSync } from "node:fs";
import { startSyntheticAgent } from "./synthetic-agent.ts";
import type { FleetPki } from "../harness/fleet.ts";

export interface AgentChildConfig {
  site: string;
  agent: string;
  url: string;
  ca: string;
  cert: string;
  key: string;
  /** Directory of the buffer file (<agent>.db); the same across restarts. */
  dir: string;
  /** Distinguishes this run's markers from an earlier run's ("<agent>#r<run>-<n>"). */
  run: number;
  perTick: number;
  everyMs: number;
  maxTicks: number;
  maxRunMs: number;
}

const config = JSON.parse(process.argv[2] ?? "null") as AgentChildConfig | null;
if (config === null) throw new Error("usage: agent-child.ts CONFIG_JSON");

// The certificate already exists; this stands in for FleetPki without re-issuing it.
const pki: FleetPki = {
  dir: config.dir,
  ca: config.ca,
  serverCert: "",
  serverKey: "",
  agent: () =>
    Promise.resolve({
      ca: config.ca,
      cert: config.cert,
      key: config.key,
      notAfter: new Date(),
      limitedByCa: false,
      serial: "",
      sha256: "",
    }),
};
const agent = await startSyntheticAgent({
  site: config.site,
  agent: config.agent,
  markerPrefix: `${config.agent}#r${config.run}-`,
  url: config.url,
  pki,
  dir: config.dir,
});

let ticks = 0;
const timer = setInterval(() => {
  for (let k = 0; k < config.perTick; k++) {
    const before = agent.buffer.lastSeq();
    agent.produce(1);
    const seq = agent.buffer.lastSeq();
    if (seq !== before) writeSync(1, `C ${seq} ${agent.committed.get(seq)}\n`);
  }
  if (++ticks >= config.maxTicks) clearInterval(timer);
}, config.everyMs);

let stopping = false;
const shutdown = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  clearTimeout(limit);
  await agent.close();
  writeSync(1, `S ${JSON.stringify(agent.shipper.status())}\n`);
};
const limit = setTimeout(() => void shutdown(), config.maxRunMs);
process.once("SIGTERM", () => void shutdown());
