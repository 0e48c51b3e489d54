// Figure (d): what the end-of-command delimiter costs on its own. Every
// command smbfleet times is followed by `lcd /dev/null/<token>-<n>` (see
// agent/checks/smb/session.ts), so an empty command line inside one session
// times exactly that: a write to smbclient and the line it prints back.
import { buildInvocation } from "../../agent/checks/smb/invocation.ts";
import { LocalDirPool } from "../../agent/checks/smb/local-dir-pool.ts";
import { SmbclientSession } from "../../agent/checks/smb/session.ts";
import { median } from "../../shared/result.ts";
import type { SambaServer } from "../../test/harness/samba.ts";
import { makeTarget } from "../../test/harness/targets.ts";

/** Generous per command: the delimiter takes a tenth of a millisecond; this only bounds a broken session. */
const COMMAND_TIMEOUT_MS = 1_000;
const LOGIN_TIMEOUT_MS = 10_000;

/** Median ms of `samples` empty commands in one logged-in session. */
export async function delimiterCostMs(samba: SambaServer, samples: number): Promise<number> {
  const target = makeTarget(samba);
  // The run directory and authentication file the agent itself uses.
  const pool = new LocalDirPool({ parent: samba.dir, idleTtlMs: 60_000 });
  const dir = await pool.acquire();
  try {
    await dir.setUsername(target.username);
    const invocation = buildInvocation(
      target,
      { stdbuf: "/usr/bin/stdbuf", smbclient: "/usr/bin/smbclient", authFile: dir.authPath },
      process.env,
    );
    const session = new SmbclientSession(
      { ...invocation, maxOutputBytesPerCommand: 1 << 20, killGraceMs: 200 },
      LOGIN_TIMEOUT_MS,
      new AbortController().signal,
    );
    const login = await session.login();
    if (login.status !== "ok") throw new Error(`delimiter figure: login ${login.status}: ${login.detail}`);
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const o = await session.exec("", COMMAND_TIMEOUT_MS);
      if (o.status !== "ok") throw new Error(`delimiter figure: empty command ${o.status}: ${o.detail}`);
      times.push(o.elapsedMs);
    }
    await session.quit(2_000);
    return median(times)!;
  } finally {
    await pool.release(dir, false);
    await pool.close();
  }
}
