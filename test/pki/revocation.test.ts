// Revocation end to end, as an operator meets it: `smbfleet pki` on the
// command line, `smbfleet aggregator` as a real process on a real PostgreSQL
// reading revoked.json beside its CA (the default [tls] revoked), its /metrics
// behind a bearer token. A re-issued agent's old certificate is refused and
// the new one accepted; an open stream ends within seconds of its
// certificate being revoked; the refusals are counted by reason.
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { Client, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../cli/run.ts";
import { clientCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles } from "../../shared/tls/files.ts";
import { pkiPaths } from "../../shared/tls/pki.ts";
import type { AggregatorProcess } from "../harness/fleet.ts";
import { startFleet, type Fleet } from "../fleet/fixture.ts";
import { TestStream } from "../ingest/fixture.ts";
import { wireResults } from "../ingest/results.ts";

const TOKEN = "revocation-test-token-0123456789";
/** The aggregator polls the list every 2 s; a loaded 2-core box may add a little. */
const WITHIN_MS = 6_000;

let fleet: Fleet;
let agg: AggregatorProcess;
const clients: Client[] = [];

beforeAll(async () => {
  fleet = await startFleet("revocation");
  agg = await fleet.startAggregator({ httpToken: TOKEN });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await fleet?.close();
});

async function pki(...args: string[]): Promise<string> {
  let out = "";
  let err = "";
  const code = await runCli(["pki", ...args], {}, new AbortController().signal, {
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
  });
  if (code !== 0) throw new Error(`pki ${args.join(" ")}: exit ${code}: ${err}`);
  return out;
}

/** A copy of the agent's current certificate and key (issue-agent --force replaces the files). */
function keep(agent: string, as: string): { ca: string; cert: string; key: string } {
  const paths = pkiPaths(fleet.pki.dir);
  const copy = { ca: paths.ca, cert: join(fleet.dir, `${as}.pem`), key: join(fleet.dir, `${as}-key.pem`) };
  copyFileSync(paths.agent(agent), copy.cert);
  copyFileSync(paths.agentKey(agent), copy.key);
  return copy;
}

async function open(files: { ca: string; cert: string; key: string }): Promise<TestStream> {
  const client = new Client(agg.url, clientCredentials(await loadTlsFiles(files)));
  clients.push(client);
  return new TestStream(client);
}

function hello(s: TestStream, agentId: string): void {
  s.send({ kind: { case: "hello", value: { site: "paris", agentId, agentVersion: "t" } } });
}

const metrics = async (authorization?: string) =>
  fetch(`http://127.0.0.1:${agg.httpPort}/metrics`, authorization ? { headers: { authorization } } : {});

async function results(agent: string): Promise<number> {
  const rows = await fleet.sql`SELECT count(*)::int AS n FROM results WHERE agent_id = ${agent}`;
  return rows[0]?.["n"] as number;
}

describe("revocation by certificate", () => {
  it("refuses a re-issued agent's old certificate, within seconds on an open stream, and accepts the new one", async () => {
    await pki("issue-agent", "--dir", fleet.pki.dir, "--site", "paris", "--agent", "paris-01");
    const old = keep("paris-01", "old");
    const open1 = await open(old);
    hello(open1, "paris-01");
    expect((await open1.next()).kind.case).toBe("welcome");

    const issued = await pki(
      "issue-agent",
      "--dir",
      fleet.pki.dir,
      "--site",
      "paris",
      "--agent",
      "paris-01",
      "--force",
    );
    expect(issued).toMatch(
      /^revoked certificate serial [0-9a-f]+, sha256 [0-9a-f]{64} \(agent paris-01 of site paris\) \(superseded\)/m,
    );
    const started = Date.now();
    const ended = await open1.status;
    expect(Date.now() - started).toBeLessThan(WITHIN_MS);
    expect(ended.code).toBe(status.PERMISSION_DENIED);
    expect(ended.details).toMatch(
      /^certificate serial [0-9a-f]+ of agent paris-01 \(site paris\) is revoked \(superseded\)$/,
    );

    // A new stream with the old certificate: refused before Hello is read, nothing stored.
    const again = await open(old);
    hello(again, "paris-01");
    again.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(3) } } });
    expect((await again.status).code).toBe(status.PERMISSION_DENIED);
    expect(await results("paris-01")).toBe(0);

    const renewed = await open(keep("paris-01", "new"));
    hello(renewed, "paris-01");
    expect((await renewed.next()).kind.case).toBe("welcome");
    renewed.send({ kind: { case: "batch", value: { firstSeq: 1n, results: wireResults(3) } } });
    expect((await renewed.next()).kind.value).toMatchObject({ upToSeq: 3n });
    expect(await results("paris-01")).toBe(3);

    // `pki revoke` reaches the open stream of the new certificate the same way.
    const revoked = await pki("revoke", "--dir", fleet.pki.dir, "--agent", "paris-01");
    expect(revoked).toMatch(/^revoked certificate serial [0-9a-f]+/);
    const t0 = Date.now();
    expect((await renewed.status).code).toBe(status.PERMISSION_DENIED);
    expect(Date.now() - t0).toBeLessThan(WITHIN_MS);
    expect(await results("paris-01")).toBe(3);
  });

  it("serves /metrics only with the token, and counts the refusals by reason", async () => {
    const denied = await metrics();
    expect(denied.status).toBe(401);
    expect(denied.headers.get("www-authenticate")).toBe('Bearer realm="smbfleet"');
    expect((await metrics(`Bearer ${TOKEN}-wrong`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${agg.httpPort}/healthz`)).status).toBe(200);
    const ok = await metrics(`Bearer ${TOKEN}`);
    expect(ok.status).toBe(200);
    const text = await ok.text();
    // Two open streams ended and one refused at connect.
    expect(text).toContain(
      'smbfleet_ingest_streams_refused_total{code="PERMISSION_DENIED",reason="revoked"} 3',
    );
    expect(text).toContain(
      'smbfleet_ingest_streams_refused_total{code="UNAUTHENTICATED",reason="no_client_certificate"} 0',
    );
  });

  it("still ends open TLS streams with a status on SIGTERM, and exits 0", async () => {
    await pki("issue-agent", "--dir", fleet.pki.dir, "--site", "paris", "--agent", "paris-02");
    const s = await open(keep("paris-02", "p2"));
    hello(s, "paris-02");
    expect((await s.next()).kind.case).toBe("welcome");
    expect(await agg.stop()).toBe(0);
    expect((await s.status).details).toBe("aggregator shutting down; reconnect");
  });
});
