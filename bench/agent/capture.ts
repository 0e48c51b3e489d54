// tcpdump on lo for one Samba port, for figure (b): started before the
// sequential runs, stopped after them; the file is read by pcap.ts.
import { spawn, type ChildProcess } from "node:child_process";

/** tcpdump prints "listening on" within milliseconds; a loaded machine gets far more. */
const START_TIMEOUT_MS = 10_000;
/** Let the last packets reach the file before asking tcpdump to stop. */
const FLUSH_MS = 300;

export async function startCapture(port: number, file: string): Promise<ChildProcess> {
  // -Z root: write the file as root (tcpdump would drop to its own user and fail on a root-owned temp dir).
  const child = spawn("tcpdump", ["-i", "lo", "-w", file, "-Z", "root", `tcp port ${port}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("tcpdump did not start")), START_TIMEOUT_MS);
    child.stderr.on("data", (d: Buffer) => {
      if (d.toString().includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`tcpdump exited (${code})`)));
  });
  return child;
}

export async function stopCapture(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  await new Promise((r) => setTimeout(r, FLUSH_MS));
  child.kill("SIGINT");
  await exited;
}
