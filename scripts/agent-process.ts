// `smbfleet agent` as a child process, for the demo, the end-to-end tests
// and the benchmarks: started as bin/smbfleet starts it (`node <the agent's V8
// flags> main.ts agent --config F`, with this process's node), its pino
// JSON log parsed line by line, its HTTP address taken from the
// "agent started" line (so http_listen may use port 0), stopped by signal.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { agentNodeFlags } from "../shared/launcher.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
/** The agent is listening within ~300 ms here; a loaded test machine gets far more. */
const START_TIMEOUT_MS = 20_000;
/** Graceful stop takes milliseconds; past this the child is killed and the caller told. */
const STOP_TIMEOUT_MS = 15_000;

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** http://host:port of /metrics /healthz /readyz. */
  readonly url: string;
  /** Every JSON log line so far. */
  readonly logs: LogLine[];
  /** Raw stdout lines that were not JSON, and all of stderr. */
  readonly otherOutput: string[];
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Sends the signal and waits for exit; SIGKILLs after the timeout and rejects. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export class AgentStartError extends Error {
  readonly output: string;
  constructor(message: string, output: string) {
    super(`${message}\n${output}`);
    this.name = "AgentStartError";
    this.output = output;
  }
}

export async function startAgentProcess(
  configFile: string,
  opts: {
    env?: NodeJS.ProcessEnv;
    startTimeoutMs?: number;
    /** Own process group, so a terminal's Ctrl-C reaches only the caller, which then stops the agent once. */
    detached?: boolean;
  } = {},
): Promise<AgentProcess> {
  const child = spawn(process.execPath, [...agentNodeFlags(), MAIN, "agent", "--config", configFile], {
    env: opts.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: opts.detached ?? false,
  });
  const logs: LogLine[] = [];
  const otherOutput: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let onLine: ((line: LogLine) => void) | null = null;
  createInterface({ input: child.stdout }).on("line", (text) => {
    try {
      const line = JSON.parse(text) as LogLine;
      logs.push(line);
      onLine?.(line);
    } catch {
      otherOutput.push(text);
    }
  });
  createInterface({ input: child.stderr }).on("line", (text) => otherOutput.push(text));

  const started = await new Promise<LogLine | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), opts.startTimeoutMs ?? START_TIMEOUT_MS);
    onLine = (line) => {
      if (line.msg === "agent started") {
        clearTimeout(timer);
        resolve(line);
      }
    };
    void exited.then(() => {
      clearTimeout(timer);
      resolve(null);
    });
  });
  onLine = null;
  if (started === null) {
    child.kill("SIGKILL");
    await exited;
    // Let readline deliver what the child printed last.
    await new Promise((r) => setImmediate(r));
    throw new AgentStartError(
      "smbfleet agent did not start",
      [...logs.map((l) => JSON.stringify(l)), ...otherOutput].join("\n"),
    );
  }
  const url = `http://${String(started["http"])}`;

  return {
    child,
    pid: child.pid!,
    url,
    logs,
    otherOutput,
    exited,
    async stop(signal = "SIGTERM", timeoutMs = STOP_TIMEOUT_MS) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      const outcome = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        child.kill("SIGKILL");
        await exited;
        throw new Error(`smbfleet agent did not exit within ${timeoutMs} ms of ${signal}`);
      }
      return outcome;
    },
  };
}
