// Acceptance item 2 at the aggregator: identity comes from the client
// certificate. No certificate, another CA's certificate or plain text never
// reach the database; an agent claiming another site, or a revoked one, is
// refused with PERMISSION_DENIED and nothing is written.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initCa, issueAgent, pkiPaths } from "../../shared/tls/pki.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { startIngestFixture, type IngestFixture, type TestStream } from "./fixture.ts";
import { wireResults } from "./results.ts";

let pg: RunningPostgres;
let fx: IngestFixture;
let foreignDir: string;

beforeAll(async () => {
  pg = await startPostgres();
  fx = await startIngestFixture(pg, "security", {
    tls: true,
    settings: { disabledAgents: new Set(["paris-99"]) },
  });
  foreignDir = mkdtempSync(join(tmpdir(), "smbfleet-foreign-ca-"));
  await initCa(foreignDir);
});
afterAll(async () => {
  await fx?.close();
  await pg?.stop();
  if (foreignDir !== undefined) rmSync(foreignDir, { recursive: true, force: true });
});

async function written(): Promise<{ agents: string[]; sites: string[]; results: number }> {
  const a = await fx.sql`SELECT agent_id FROM agents ORDER BY agent_id`;
  const s = await fx.sql`SELECT site FROM sites ORDER BY site`;
  const r = await fx.sql`SELECT count(*)::int AS n FROM results`;
  return {
    agents: a.map((x) => String(x["agent_id"])),
    sites: s.map((x) => String(x["site"])),
    results: r[0]?.["n"] as number,
  };
}

function hello(s: TestStream, site: string, agentId: string): void {
  s.send({ kind: { case: "hello", value: { site, agentId, agentVersion: "t" } } });
  s.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(3) } } });
}

const caPem = (): Buffer => readFileSync(pkiPaths(fx.pkiDir!).ca);

describe("mTLS identity", () => {
  it("accepts an agent with a certificate from the fleet CA", async () => {
    const s = await fx.open("paris-01", "paris");
    hello(s, "paris", "paris-01");
    expect((await s.next()).kind.case).toBe("welcome");
    expect((await s.next()).kind.value).toMatchObject({ upToSeq: 3n });
    s.end();
    expect((await s.status).code).toBe(status.OK);
    expect(await written()).toEqual({ agents: ["paris-01"], sites: ["paris"], results: 3 });
  });

  it("refuses a client without a certificate, with another CA's certificate, or in plain text", async () => {
    const noCert = await fx.open("x", "paris", { creds: credentials.createSsl(caPem()) });
    const foreign = await issueAgent(foreignDir, { site: "paris", agent: "paris-02" });
    const otherCa = await fx.open("x", "paris", {
      creds: credentials.createSsl(caPem(), readFileSync(foreign.key), readFileSync(foreign.cert)),
    });
    const plain = await fx.open("x", "paris", { creds: credentials.createInsecure() });
    for (const s of [noCert, otherCa, plain]) {
      hello(s, "paris", "paris-02");
      // Refused in the TLS handshake, before any handler runs.
      expect((await s.status).code).toBe(status.UNAVAILABLE);
    }
    expect(await written()).toEqual({ agents: ["paris-01"], sites: ["paris"], results: 3 });
  });

  it("refuses an agent of site A claiming site B (or another agent id) and writes nothing", async () => {
    const s = await fx.open("paris-03", "paris");
    hello(s, "berlin", "paris-03");
    const st = await s.status;
    expect(st.code).toBe(status.PERMISSION_DENIED);
    expect(st.details).toBe('Hello claims site "berlin" but the certificate is for site "paris"');
    const t = await fx.open("paris-03", "paris");
    hello(t, "paris", "paris-01");
    const st2 = await t.status;
    expect(st2.code).toBe(status.PERMISSION_DENIED);
    expect(st2.details).toBe('Hello claims agent "paris-01" but the certificate is for agent "paris-03"');
    expect(await written()).toEqual({ agents: ["paris-01"], sites: ["paris"], results: 3 });
  });

  it("refuses an agent disabled in the config", async () => {
    const s = await fx.open("paris-99", "paris");
    hello(s, "paris", "paris-99");
    const st = await s.status;
    expect(st.code).toBe(status.PERMISSION_DENIED);
    expect(st.details).toBe("agent paris-99 is revoked (disabled in the aggregator config)");
    expect((await written()).agents).toEqual(["paris-01"]);
  });

  it("refuses an agent disabled in the database, at connect and on its open stream", async () => {
    const open = await fx.open("paris-01", "paris");
    open.send({ kind: { case: "hello", value: { site: "paris", agentId: "paris-01" } } });
    expect((await open.next()).kind.case).toBe("welcome");
    await fx.sql`UPDATE agents SET disabled = true WHERE agent_id = 'paris-01'`;
    // The open stream: its next batch is refused and not stored.
    open.send({ kind: { case: "batch", value: { firstSeq: 4n, results: wireResults(2) } } });
    const st = await open.status;
    expect(st.code).toBe(status.PERMISSION_DENIED);
    expect(st.details).toBe("agent paris-01 is disabled or not registered");
    // A new stream is refused at Hello.
    const again = await fx.open("paris-01", "paris");
    hello(again, "paris", "paris-01");
    expect((await again.status).details).toBe("agent paris-01 is disabled (revoked)");
    expect((await written()).results).toBe(3);
    const hw = await fx.sql`SELECT high_water_seq FROM agents WHERE agent_id = 'paris-01'`;
    expect(hw[0]?.["high_water_seq"]).toBe(3n);
  });

  it("refuses an agent id that is registered to another site", async () => {
    // Same agent name, certificate for another site (a re-issued or forged name).
    const s = await fx.open("paris-01", "lyon");
    hello(s, "lyon", "paris-01");
    const st = await s.status;
    expect(st.code).toBe(status.PERMISSION_DENIED);
    expect(st.details).toBe("agent paris-01 is registered to site paris, not lyon");
    expect((await written()).sites).toEqual(["paris"]);
  });
});
