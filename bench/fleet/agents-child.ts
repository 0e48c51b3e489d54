// Starts one bench/fleet/agents.ts child process (a share of the simulated
// agents) and speaks its line protocol: it reports "connected" until all
// its agents are, produces on "start", and ends with a "done" report.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { FleetPki } from "../../test/harness/fleet.ts";
import type { AgentsConfig, AgentsReport } from "./agents.ts";

/** Connecting 1,000 agents at 100/s takes 10 s; a phase that cannot connect in this gives up. */
const CONNECT_DEADLINE_MS = 180_000;

export interface AgentsChild {
  proc: ChildProcess;
  allConnected: Promise<void>;
  done: Promise<AgentsReport>;
  exited: Promise<void>;
}

export function pkiFiles(pki: FleetPki, agent: string): { cert: string; key: string } {
  return { cert: join(pki.dir, "agents", `${agent}.pem`), key: join(pki.dir, "agents", `${agent}-key.pem`) };
}

export function startAgents(root: string, name: string, config: AgentsConfig): AgentsChild {
  const file = join(root, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  const proc = spawn(process.execPath, [join(import.meta.dirname, "agents.ts"), file], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  let connected = 0;
  let onConnected: () => void = () => {};
  let onReport: (r: AgentsReport) => void = () => {};
  createInterface({ input: proc.stdout }).on("line", (line) => {
    const msg = JSON.parse(line) as { type: string; n?: number };
    if (msg.type === "connected") {
      connected = msg.n ?? 0;
      if (connected === config.agents.length) onConnected();
    } else if (msg.type === "done") {
      onReport(msg as AgentsReport);
    }
  });
  const allConnected = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(
        new Error(
          `${name}: only ${connected} of ${config.agents.length} agents connected in ${CONNECT_DEADLINE_MS} ms`,
        ),
      );
    }, CONNECT_DEADLINE_MS);
    onConnected = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  const done = new Promise<AgentsReport>((resolve, reject) => {
    onReport = resolve;
    void exited.then(() => reject(new Error(`${name}: exited without a report`)));
  });
  // Handled where awaited; this keeps an early exit from being an unhandled rejection meanwhile.
  done.catch(() => undefined);
  return { proc, allConnected, done, exited };
}
