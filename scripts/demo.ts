// `make demo`. By default a two-site fleet on loopback (scripts/demo-fleet.ts):
// Samba, PostgreSQL, the fleet PKI, `smbfleet aggregator` and two
// `smbfleet agent`s, summarised from the aggregator's /metrics.
// DEMO_MODE=standalone runs one agent without an aggregator instead
// (scripts/demo-standalone.ts), a deployment that remains valid.
// DEMO_ONCE=1 exits after the summary (the end-to-end test uses it);
// otherwise the demo runs until Ctrl-C and stops everything it started.
// A second Ctrl-C kills the smbfleet processes instead of draining them.
import { runFleetDemo } from "./demo-fleet.ts";
import { runStandaloneDemo } from "./demo-standalone.ts";
import { log } from "./demo-summary.ts";

const MODES = ["fleet", "standalone"] as const;

async function main(): Promise<number> {
  const mode = process.env["DEMO_MODE"] ?? "fleet";
  if (!(MODES as readonly string[]).includes(mode)) {
    log(`DEMO_MODE must be one of ${MODES.join(", ")}; got ${JSON.stringify(mode)}`);
    return 2;
  }
  const stop = new AbortController();
  const force = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (!stop.signal.aborted) {
        log(`${sig}: stopping (again to kill instead)`);
        stop.abort();
      } else force.abort();
    });
  }
  const opts = {
    once: process.env["DEMO_ONCE"] === "1",
    signal: stop.signal,
    force: force.signal,
    env: process.env,
  };
  try {
    return await (mode === "standalone" ? runStandaloneDemo(opts) : runFleetDemo(opts));
  } catch (err) {
    // Everything started is already stopped (each mode's finally); say why it failed, without a stack for the usual causes.
    log(`failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

process.exitCode = await main();
