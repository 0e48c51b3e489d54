// The sender over mTLS with certificates from the fleet PKI (shared/tls): it
// delivers with its agent certificate, and gets nowhere with a certificate from
// another CA or a server it cannot verify.
import { mkdtempSync, rmSync } from "node:fs";
import { Writable } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, afterAll, expect, it } from "vitest";
import { openBuffer, type ResultBuffer } from "../../agent/buffer/buffer.ts";
import { sampleResult } from "../../agent/buffer/testdata/sample-result.ts";
import { startShipper, type Shipper } from "../../agent/pusher/shipper.ts";
import type { AggregatorSection } from "../../shared/config/types.ts";
import { createLogger, type Logger } from "../../shared/logger.ts";
import { serverCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles } from "../../shared/tls/files.ts";
import { initCa, issueAgent, issueServer, type IssuedFiles } from "../../shared/tls/pki.ts";
import { until } from "../harness/wait.ts";
import { startIngestStub, type IngestStub } from "./ingest-stub.ts";

let root: string;
let server: IssuedFiles;
let agent: IssuedFiles;
let stranger: IssuedFiles;
let stub: IngestStub;
let buffer: ResultBuffer | undefined;
let shipper: Shipper | undefined;
/** What the current shipper logged (warn and above). */
let logged: Array<{ msg?: string }> = [];

/** The sender's words for a connection attempt that failed; it then backs off and tries again. */
const FAILED_ATTEMPT = new Set([
  "connecting to the aggregator failed",
  "cannot connect with this TLS configuration; retrying",
  "aggregator refused this agent; retrying",
]);

function capturingLogger(): Logger {
  logged = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n"))
        if (line !== "") logged.push(JSON.parse(line) as { msg?: string });
      callback();
    },
  });
  return createLogger("agent", { level: "warn", destination });
}

/** Resolves once the sender has tried, failed and backed off twice: long enough to have connected if it could. */
async function twoFailedAttempts(): Promise<void> {
  await until(
    "two failed connection attempts",
    () => logged.filter((l) => FAILED_ATTEMPT.has(l.msg ?? "")).length >= 2,
    {
      detail: () => logged.slice(-3),
    },
  );
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "smbfleet-pusher-tls-"));
  await initCa(join(root, "fleet"));
  server = await issueServer(join(root, "fleet"), { ip: ["127.0.0.1"] });
  agent = await issueAgent(join(root, "fleet"), { site: "paris", agent: "paris-01" });
  await initCa(join(root, "other"));
  stranger = await issueAgent(join(root, "other"), { site: "paris", agent: "paris-01" });
  stub = await startIngestStub({ credentials: serverCredentials(await loadTlsFiles(server)) });
});
afterAll(async () => {
  await stub.stop();
  rmSync(root, { recursive: true, force: true });
});
afterEach(async () => {
  await shipper?.stop();
  buffer?.close();
  shipper = undefined;
  buffer = undefined;
});

function ship(aggregator: AggregatorSection, name: string): Shipper {
  buffer = openBuffer(join(root, `${name}.db`), { maxBytes: 1 << 30, maxAgeSeconds: 86_400 });
  buffer.appendMany([1, 2, 3].map((i) => sampleResult(i)));
  shipper = startShipper(
    {
      buffer,
      aggregator,
      site: "paris",
      agentId: "paris-01",
      agentVersion: "0.0.0-test",
      targets: [],
      logger: capturingLogger(),
      options: { backoff: { initialMs: 50, maxMs: 200, factor: 2, jitter: 0.2 }, connectTimeoutMs: 1_000 },
    },
    new AbortController().signal,
  );
  return shipper;
}

it("delivers over mTLS with the agent's certificate", async () => {
  const s = ship({ url: stub.url, ca: agent.ca, cert: agent.cert, key: agent.key, insecure: false }, "good");
  await until("delivered", () => stub.committed.length === 3);
  expect(s.connected()).toBe(true);
  expect(stub.hellos.at(-1)?.agentId).toBe("paris-01");
  await until("acked", () => buffer?.backlog().count === 0);
});

it("gets nowhere with a certificate from another CA, and keeps its results", async () => {
  const before = stub.hellos.length;
  // The stranger trusts its own CA, so it cannot verify the server either; both checks refuse.
  const s = ship(
    { url: stub.url, ca: stranger.ca, cert: stranger.cert, key: stranger.key, insecure: false },
    "stranger",
  );
  await twoFailedAttempts();
  expect(s.connected()).toBe(false);
  expect(stub.hellos.length).toBe(before);
  expect(buffer?.backlog().count).toBe(3);
});

it("a certificate not issued by the configured CA is refused before any connection", async () => {
  // shared/tls checks the chain locally (TLS_INVALID), so the operator reads which file is wrong.
  const before = stub.hellos.length;
  const s = ship(
    { url: stub.url, ca: agent.ca, cert: stranger.cert, key: stranger.key, insecure: false },
    "mixed",
  );
  await twoFailedAttempts();
  expect(s.connected()).toBe(false);
  expect(stub.hellos.length).toBe(before);
  expect(buffer?.backlog().count).toBe(3);
});

it("plain text against the mTLS server does not connect", async () => {
  const s = ship({ url: stub.url, ca: null, cert: null, key: null, insecure: true }, "plain");
  await twoFailedAttempts();
  expect(s.connected()).toBe(false);
  expect(buffer?.backlog().count).toBe(3);
});
