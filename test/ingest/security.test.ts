// Acceptance item 2 at the aggregator: identity comes from the client
// certificate. No certificate, another CA's, an expired one, a server
// certificate, plain text, an agent claiming another site, a disabled agent
// and a revoked certificate are all refused, each counted by reason in
// smbfleet_ingest_streams_refused_total, and nothing reaches the database:
// every refused attempt sends a Hello with targets and a batch with a result
// that would be quarantined, and the tables are compared before and after.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, status, type ChannelCredentials, type StatusObject } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles } from "../../shared/tls/files.ts";
import { initCa, issueAgent, issueServer, pkiPaths } from "../../shared/tls/pki.ts";
import { revokeCertificates } from "../../shared/tls/revoke.ts";
import { startPostgres, type RunningPostgres } from "../harness/postgres.ts";
import { until } from "../harness/wait.ts";
import { startIngestFixture, type IngestFixture, type TestStream } from "./fixture.ts";
import { wireResult, wireResults } from "./results.ts";

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

/** Everything a stream can write: sites, agents (and their high-water marks), targets, results, quarantine. */
async function written(f: IngestFixture = fx) {
  const rows = async (query: Promise<Record<string, unknown>[]>) =>
    (await query).map((r) => Object.values(r).map(String).join("|"));
  return {
    sites: await rows(f.sql`SELECT site FROM sites ORDER BY 1`),
    agents: await rows(f.sql`SELECT agent_id, site, high_water_seq, disabled FROM agents ORDER BY 1`),
    targets: await rows(f.sql`SELECT site, address, share FROM targets ORDER BY 1, 2, 3`),
    results: await rows(f.sql`SELECT agent_id, seq FROM results ORDER BY 1, 2`),
    quarantined: await rows(f.sql`SELECT agent_id, seq FROM quarantined_results ORDER BY 1, 2`),
  };
}

/** The refusal counters by "CODE/reason", only those above 0. */
async function refusals(f: IngestFixture = fx): Promise<Record<string, number>> {
  const metric = await f.metrics.streamsRefused.get();
  return Object.fromEntries(
    metric.values
      .filter((v) => v.value > 0)
      .map((v) => [`${v.labels["code"]}/${v.labels["reason"]}`, v.value]),
  );
}

/** How the refusal counters moved while `action` ran (waiting briefly for a count that trails the status). */
async function counted(action: () => Promise<void>, expected: Record<string, number>, f: IngestFixture = fx) {
  const before = await refusals(f);
  await action();
  const delta = async () => {
    const after = await refusals(f);
    return Object.fromEntries(
      Object.entries(after)
        .map(([k, v]) => [k, v - (before[k] ?? 0)] as const)
        .filter(([, v]) => v !== 0),
    );
  };
  await until(
    "the refusal to be counted",
    async () => JSON.stringify(await delta()) === JSON.stringify(expected),
    { timeoutMs: 5_000, detail: delta },
  );
  expect(await delta()).toEqual(expected);
}

/** A Hello announcing a target, then a batch with two results and one that would be quarantined. */
function helloAndBatch(s: TestStream, site: string, agentId: string, firstSeq = 1n): void {
  s.send({
    kind: { case: "hello", value: { site, agentId, agentVersion: "t", targets: [wireResult(42).target!] } },
  });
  const bogus = wireResult(43, Date.now() - 5_000, {
    operations: [{ operation: "teleport", samplesMs: [1], failures: 0 }],
  });
  s.send({ kind: { case: "batch", value: { firstSeq, results: [...wireResults(2), bogus] } } });
}

async function refusedWith(s: TestStream, site: string, agentId: string): Promise<StatusObject> {
  helloAndBatch(s, site, agentId);
  return s.status;
}

const caPem = (): Buffer => readFileSync(pkiPaths(fx.pkiDir!).ca);
/** Client credentials from files as they are (loadTlsFiles would refuse an expired certificate). */
const raw = (files: { cert: string; key: string }): ChannelCredentials =>
  credentials.createSsl(caPem(), readFileSync(files.key), readFileSync(files.cert));

describe("mTLS identity", () => {
  let accepted: Awaited<ReturnType<typeof written>>;

  it("accepts an agent with a certificate from the fleet CA", async () => {
    const s = await fx.open("paris-01", "paris");
    s.send({ kind: { case: "hello", value: { site: "paris", agentId: "paris-01", agentVersion: "t" } } });
    expect((await s.next()).kind.case).toBe("welcome");
    s.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(3) } } });
    expect((await s.next()).kind.value).toMatchObject({ upToSeq: 3n });
    s.end();
    expect((await s.status).code).toBe(status.OK);
    accepted = await written();
    expect(accepted).toMatchObject({ sites: ["paris"], agents: ["paris-01|paris|3|false"], quarantined: [] });
    expect(accepted.results).toHaveLength(3);
    expect(await refusals()).toEqual({});
  });

  it.each([
    [
      "no client certificate",
      () => Promise.resolve(credentials.createSsl(caPem())),
      "no_client_certificate",
      "no client certificate",
    ],
    [
      "another CA's certificate",
      async () => {
        return raw(await issueAgent(foreignDir, { site: "paris", agent: "paris-02", force: true }));
      },
      "untrusted_certificate",
      "client certificate not issued by the fleet CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE)",
    ],
    [
      "an expired certificate",
      async () => {
        const now = new Date(Date.now() - 40 * 86_400_000);
        const old = await issueAgent(fx.pkiDir!, {
          site: "paris",
          agent: "paris-02",
          days: 30,
          now,
          force: true,
        });
        return raw(old);
      },
      "expired_certificate",
      expect.stringMatching(/^client certificate expired on .* \(CERT_HAS_EXPIRED\)$/) as unknown as string,
    ],
    [
      "the aggregator's own server certificate",
      async () => {
        return raw(await issueServer(fx.pkiDir!, { dns: ["localhost"], ip: ["127.0.0.1"], force: true }));
      },
      "bad_identity",
      "client certificate is not for client authentication (INVALID_PURPOSE)",
    ],
  ])(
    "refuses %s with UNAUTHENTICATED, counts it and writes nothing",
    async (_name, make, reason, details) => {
      const c = await make();
      await counted(
        async () => {
          const st = await refusedWith(await fx.open("x", "paris", { creds: c }), "paris", "paris-02");
          expect(st).toMatchObject({ code: status.UNAUTHENTICATED, details });
        },
        { [`UNAUTHENTICATED/${reason}`]: 1 },
      );
      expect(await written()).toEqual(accepted);
    },
  );

  it("refuses plain text during the handshake, counts it as not_tls and writes nothing", async () => {
    await counted(
      async () => {
        const st = await refusedWith(
          await fx.open("x", "paris", { creds: credentials.createInsecure() }),
          "paris",
          "paris-02",
        );
        expect(st.code).toBe(status.UNAVAILABLE);
      },
      { "UNAVAILABLE/not_tls": 1 },
    );
    expect(await written()).toEqual(accepted);
  });

  it("refuses an agent of site A claiming site B (or another agent id) and writes nothing", async () => {
    await counted(
      async () => {
        const st = await refusedWith(await fx.open("paris-03", "paris"), "berlin", "paris-03");
        expect(st).toMatchObject({
          code: status.PERMISSION_DENIED,
          details: 'Hello claims site "berlin" but the certificate is for site "paris"',
        });
      },
      { "PERMISSION_DENIED/site_mismatch": 1 },
    );
    await counted(
      async () => {
        const st = await refusedWith(await fx.open("paris-03", "paris"), "paris", "paris-01");
        expect(st).toMatchObject({
          code: status.PERMISSION_DENIED,
          details: 'Hello claims agent "paris-01" but the certificate is for agent "paris-03"',
        });
      },
      { "PERMISSION_DENIED/agent_mismatch": 1 },
    );
    expect(await written()).toEqual(accepted);
  });

  it("refuses an agent disabled in the config and writes nothing", async () => {
    await counted(
      async () => {
        const st = await refusedWith(await fx.open("paris-99", "paris"), "paris", "paris-99");
        expect(st).toMatchObject({
          code: status.PERMISSION_DENIED,
          details: "agent paris-99 is revoked (disabled in the aggregator config)",
        });
      },
      { "PERMISSION_DENIED/disabled": 1 },
    );
    expect(await written()).toEqual(accepted);
  });

  it("refuses an agent id that is registered to another site and writes nothing", async () => {
    // Same agent name, certificate for another site (a re-issued or forged name).
    await counted(
      async () => {
        const st = await refusedWith(await fx.open("paris-01", "lyon"), "lyon", "paris-01");
        expect(st).toMatchObject({
          code: status.PERMISSION_DENIED,
          details: "agent paris-01 is registered to site paris, not lyon",
        });
      },
      { "PERMISSION_DENIED/site_mismatch": 1 },
    );
    expect(await written()).toEqual(accepted);
  });

  it("refuses an agent disabled in the database, at connect and on its open stream", async () => {
    const open = await fx.open("paris-01", "paris");
    open.send({ kind: { case: "hello", value: { site: "paris", agentId: "paris-01" } } });
    expect((await open.next()).kind.case).toBe("welcome");
    await fx.sql`UPDATE agents SET disabled = true WHERE agent_id = 'paris-01'`;
    const disabled = await written();
    // The open stream: its next batch is refused and not stored.
    await counted(
      async () => {
        open.send({ kind: { case: "batch", value: { firstSeq: 4n, results: wireResults(2) } } });
        expect(await open.status).toMatchObject({
          code: status.PERMISSION_DENIED,
          details: "agent paris-01 is disabled or not registered",
        });
        // A new stream is refused at Hello.
        const again = await fx.open("paris-01", "paris");
        expect((await refusedWith(again, "paris", "paris-01")).details).toBe(
          "agent paris-01 is disabled (revoked)",
        );
      },
      { "PERMISSION_DENIED/disabled": 2 },
    );
    expect(await written()).toEqual(disabled);
    expect(disabled.results).toEqual(accepted.results);
  });
});

describe("revocation by certificate", () => {
  let rx: IngestFixture;
  beforeAll(async () => {
    rx = await startIngestFixture(pg, "revocation", { tls: true, revocationPollMs: 100 });
  });
  afterAll(async () => {
    await rx?.close();
  });

  const agentCreds = async (files: { ca: string; cert: string; key: string }) =>
    clientCredentials(await loadTlsFiles(files));

  it("refuses a re-issued agent's old certificate and accepts the new one", async () => {
    const old = await issueAgent(rx.pkiDir!, { site: "paris", agent: "paris-01" });
    const oldCreds = await agentCreds(old);
    const s = await rx.open("x", "paris", { creds: oldCreds });
    s.send({ kind: { case: "hello", value: { site: "paris", agentId: "paris-01" } } });
    expect((await s.next()).kind.case).toBe("welcome");
    s.end();
    await s.status;
    const before = await written(rx);

    const renewed = await issueAgent(rx.pkiDir!, { site: "paris", agent: "paris-01", force: true });
    expect(renewed.superseded).toMatchObject({ serial: old.serial, reason: "superseded" });
    // A new stream with the old certificate is refused once the aggregator has read the list.
    await until("the list to be read", () => rx.revocations?.current().find(old) !== undefined, 5_000);
    await counted(
      async () => {
        const refused = await refusedWith(
          await rx.open("x", "paris", { creds: oldCreds }),
          "paris",
          "paris-01",
        );
        expect(refused).toMatchObject({
          code: status.PERMISSION_DENIED,
          details: `certificate serial ${old.serial} of agent paris-01 (site paris) is revoked (superseded)`,
        });
      },
      { "PERMISSION_DENIED/revoked": 1 },
      rx,
    );
    expect(await written(rx)).toEqual(before);

    const t = await rx.open("x", "paris", { creds: await agentCreds(renewed) });
    t.send({ kind: { case: "hello", value: { site: "paris", agentId: "paris-01" } } });
    expect((await t.next()).kind.case).toBe("welcome");
    t.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(2) } } });
    expect((await t.next()).kind.value).toMatchObject({ upToSeq: 2n });
    t.end();
    expect((await t.status).code).toBe(status.OK);
    expect((await written(rx)).results).toHaveLength(2);
  });

  it("ends a revoked agent's open stream within seconds, and stores nothing it sends after", async () => {
    const files = await issueAgent(rx.pkiDir!, { site: "berlin", agent: "berlin-01" });
    const s = await rx.open("x", "berlin", { creds: await agentCreds(files) });
    s.send({ kind: { case: "hello", value: { site: "berlin", agentId: "berlin-01" } } });
    expect((await s.next()).kind.case).toBe("welcome");
    const before = await written(rx);
    await counted(
      async () => {
        const started = Date.now();
        await revokeCertificates(rx.pkiDir!, { agent: "berlin-01" });
        const st = await s.status;
        expect(Date.now() - started).toBeLessThan(3_000);
        expect(st).toMatchObject({
          code: status.PERMISSION_DENIED,
          details: `certificate serial ${files.serial} of agent berlin-01 (site berlin) is revoked (revoked)`,
        });
      },
      { "PERMISSION_DENIED/revoked": 1 },
      rx,
    );
    expect(await written(rx)).toEqual(before);
  });
});
