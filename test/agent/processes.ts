// Finds smbclient processes talking to one harness Samba, to prove that a
// stopped agent left none behind (other tests' smbclients use other ports).
import { readdirSync } from "node:fs";
import { processArgv } from "../harness/ports.ts";

export function smbclientsFor(port: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = processArgv(Number(entry));
    if (argv === null || !argv.some((a) => a.endsWith("smbclient"))) continue;
    const i = argv.indexOf("-p");
    if (i >= 0 && argv[i + 1] === String(port)) pids.push(Number(entry));
  }
  return pids;
}
