#!/usr/bin/env node
// The one smbfleet executable. This file only wires: it picks the command,
// hands it argv, env and a shutdown signal, and turns its result into the
// process exit code. It is the only place that calls process.exit.
import { runCli } from "./cli/run.ts";

const controller = new AbortController();
let signals = 0;
for (const name of ["SIGTERM", "SIGINT"] as const) {
  process.on(name, () => {
    signals += 1;
    // The second signal means "now": do not wait for a graceful drain.
    if (signals > 1) process.exit(130);
    controller.abort(new Error(`received ${name}`));
  });
}

const code = await runCli(process.argv.slice(2), process.env, controller.signal);
process.exit(code);
