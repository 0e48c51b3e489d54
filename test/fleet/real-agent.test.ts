// The whole path with nothing simulated: `smbfleet agent` processes probing a
// real Samba (smbclient, 3 targets at a 1 s interval) and shipping over mTLS
// to `smbfleet aggregator` processes with PostgreSQL. Faults: the aggregator
// SIGKILLed and restarted while the agent probes; then the agent SIGKILLed
// while HQ is down and it holds a backlog, restarted, and draining.
// Exactly once is checked against the agent's own buffer file: every seq it
// ever handed out is in PostgreSQL once (what a SIGTERMed agent still held is
// sent by the same sender code from the same file before counting), and no
// probe run (target, start time) appears twice.
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openBuffer } from "../../agent/buffer/buffer.ts";
import { startShipper } from "../../agent/pusher/shipper.ts";
import { silentLogger } from "../../shared/logger.ts";
import { startAgentProcess, type AgentProcess } from "../../scripts/agent-process.ts";
import { parseMetrics, select } from "../../scripts/prom-text.ts";
import { seqRange, storedResults, writeFleetAgentConfig } from "../harness/fleet.ts";
import { until } from "../harness/wait.ts";
import { startSamba, type SambaServer } from "../harness/samba.ts";
import { smbclientsFor } from "../agent/processes.ts";
import { startFleet, type Fleet } from "./fixture.ts";
import { FAST_RECONNECT } from "./synthetic-agent.ts";

const SITE = "geneva";
const AGENT = "geneva-01";
const TARGETS = 3;

let fleet: Fleet;
let samba: SambaServer;
const agents: AgentProcess[] = [];
beforeAll(async () => {
  fleet = await startFleet("real_agent");
  samba = await startSamba();
  // Each target writes into its own directory of the share.
  for (let i = 0; i < TARGETS; i++) {
    const d = join(samba.sharePaths.writable, `t${i}`);
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o777);
  }
});
afterAll(async () => {
  for (const a of agents) await a.stop("SIGKILL").catch(() => undefined);
  await fleet?.close();
  await samba?.stop();
});

/** The agent's own gauges: whether it has a stream to HQ, and what it holds in its buffer. */
async function agentGauges(agent: AgentProcess): Promise<{ connected: number; buffered: number }> {
  const samples = parseMetrics(await (await fetch(`${agent.url}/metrics`)).text());
  const value = (name: string): number => select(samples, name, {})[0]?.value ?? Number.NaN;
  return {
    connected: value("smbfleet_agent_aggregator_connected"),
    buffered: value("smbfleet_agent_buffer_results"),
  };
}

/** Resolves once the agent has lost HQ and buffered at least one round of every target meanwhile. */
async function bufferingWithoutHq(agent: AgentProcess): Promise<void> {
  await until(
    "the agent to notice HQ is gone and buffer a round of results",
    async () => {
      const g = await agentGauges(agent);
      return g.connected === 0 && g.buffered >= TARGETS ? g : null;
    },
    { timeoutMs: 30_000, detail: () => agent.logs.slice(-5) },
  );
}

async function storedCount(): Promise<number> {
  const [row] = await fleet.sql<
    { n: number }[]
  >`SELECT count(*)::int AS n FROM results WHERE agent_id = ${AGENT}`;
  return row?.n ?? 0;
}

describe("smbfleet agent → smbfleet aggregator, real probes", () => {
  it("survives an aggregator SIGKILL and its own SIGKILL with a backlog: every seq stored once", async () => {
    const agg = await fleet.startAggregator();
    const user = samba.users[0]!;
    const dir = join(fleet.dir, "real-agent");
    const config = await writeFleetAgentConfig({
      dir,
      site: SITE,
      agent: AGENT,
      aggregatorUrl: agg.url,
      pki: fleet.pki,
      smb: { ...samba, share: samba.shares.writable, user: user.name, password: user.password },
      targets: TARGETS,
      intervalSeconds: 1,
    });
    const start = async (): Promise<AgentProcess> => {
      const a = await startAgentProcess(config);
      agents.push(a);
      return a;
    };

    const first = await start();
    // Fails fast, and says so, if the agent runs without its sender.
    await until(
      "the agent's stream at the aggregator",
      async () => {
        const [row] = await fleet.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM agents WHERE agent_id = ${AGENT} AND connected_at IS NOT NULL`;
        return (row?.n ?? 0) === 1;
      },
      {
        timeoutMs: 20_000,
        detail: () =>
          "smbfleet agent never opened a stream: is the buffer + sender component in agent/components.ts?",
      },
    );
    await until("results from real probes at HQ", async () => (await storedCount()) >= 2 * TARGETS, 60_000);

    // HQ dies under the agent and comes back.
    await agg.kill("SIGKILL");
    await bufferingWithoutHq(first);
    await agg.restart();
    const afterRestart = await storedCount();
    await until(
      "results after the aggregator restart",
      async () => (await storedCount()) > afterRestart + TARGETS,
      60_000,
    );

    // HQ down again; the agent builds a backlog and is SIGKILLed holding it.
    await agg.kill("SIGKILL");
    await bufferingWithoutHq(first);
    await first.stop("SIGKILL");
    const held = openBuffer(join(dir, "buffer.db"), { maxBytes: 1 << 30, maxAgeSeconds: 86_400 });
    const backlog = held.backlog().count;
    held.close();
    expect(backlog).toBeGreaterThanOrEqual(TARGETS);

    await agg.restart();
    const second = await start();
    await until(
      "the backlog drained",
      async () => (await storedCount()) > afterRestart + backlog + TARGETS,
      60_000,
    );
    expect(await second.stop("SIGTERM")).toBe(0);
    expect(smbclientsFor(samba.port)).toEqual([]);

    // Whatever the stopped agent still held goes out through the same sender, from the same file.
    const buffer = openBuffer(join(dir, "buffer.db"), { maxBytes: 1 << 30, maxAgeSeconds: 86_400 });
    const files = await fleet.pki.agent(SITE, AGENT);
    const abort = new AbortController();
    const shipper = startShipper(
      {
        buffer,
        aggregator: { url: agg.url, ca: files.ca, cert: files.cert, key: files.key, insecure: false },
        site: SITE,
        agentId: AGENT,
        agentVersion: "0.0.0-test",
        targets: [],
        logger: silentLogger(),
        options: FAST_RECONNECT,
      },
      abort.signal,
    );
    await until("the rest delivered", () => buffer.backlog().count === 0, 30_000);
    await shipper.stop();
    const last = buffer.lastSeq();
    const dropped = buffer.dropped();
    buffer.close();

    expect(dropped).toBe(0);
    const stored = await storedResults(fleet.sql, AGENT);
    expect(stored.rows).toBe(last);
    expect(stored.seqs).toEqual(seqRange(1, last));
    expect(stored.distinctRuns).toBe(last);
    // Real runs: healthy, with per-operation samples from smbclient.
    const [real] = await fleet.sql<{ healthy: number; ops: number }[]>`
      SELECT count(*) FILTER (WHERE healthy)::int AS healthy,
             min(json_array_length(operations::json))::int AS ops
      FROM results WHERE agent_id = ${AGENT}`;
    expect(real!.healthy).toBe(last);
    expect(real!.ops).toBeGreaterThanOrEqual(5);
  });
});
