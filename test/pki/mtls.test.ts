// The aggregator's identity guarantee, over real grpc-js mTLS on loopback,
// through the aggregator's own TLS listener (aggregator/ingest/admission/):
// a stream is admitted only with a client certificate from the fleet CA that
// names an agent, and the handler reads site and agent from that
// certificate. Every refusal has its reason, counted as the aggregator counts
// it (smbfleet_ingest_streams_refused_total): certificate problems refuse the
// stream with UNAUTHENTICATED, plain text is refused in the handshake.
// Certificates come from the PKI functions; the service is the real Ingest
// definition. test/ingest/security.test.ts checks the same end to end.
import { create } from "@bufbuild/protobuf";
import {
  Server,
  credentials,
  makeGenericClientConstructor,
  status,
  type CallOptions,
  type ChannelCredentials,
  type ClientDuplexStream,
  type ServerDuplexStream,
  type ServiceError,
} from "@grpc/grpc-js";
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AggregatorMessageSchema,
  HelloSchema,
  AgentMessageSchema,
  Ingest,
  WelcomeSchema,
  type AgentMessage,
  type AggregatorMessage,
} from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import { admitCall } from "../../aggregator/ingest/admission/admit.ts";
import { startTlsListener, type TlsListener } from "../../aggregator/ingest/admission/tls-listener.ts";
import { statusName } from "../../aggregator/ingest/stream/replies.ts";
import { AggregatorMetrics } from "../../aggregator/metrics/aggregator-metrics.ts";
import { clientDefinition, serverDefinition, type Decoded } from "../../shared/grpc/service.ts";
import { createCertificate, rawSubject } from "../../shared/tls/certificate.ts";
import { clientCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles, type TlsFiles } from "../../shared/tls/files.ts";
import { checkPeerIdentity, type FleetIdentity } from "../../shared/tls/identity.ts";
import { initCa, issueAgent, issueServer, pkiPaths } from "../../shared/tls/pki.ts";

/** A refused handshake fails at once; this only keeps a broken test from hanging. */
const CALL_DEADLINE_MS = 10_000;
/** Each client gets its own connection, so one case's channel cannot serve another's call. */
const CLIENT_OPTIONS = { "grpc.use_local_subchannel_pool": 1 };

type Outcome =
  { ok: true; reply: AggregatorMessage | undefined } | { ok: false; code: status; details: string };

let root: string;
let server: Server;
let listener: TlsListener;
let address: string;
const metrics = new AggregatorMetrics({ processMetrics: false });
let handlerRuns = 0;
const seen: (FleetIdentity | null)[] = [];
let agent: TlsFiles;
let rogue: TlsFiles;
let serverFiles: TlsFiles;
let nameless: TlsFiles;
let expired: { cert: string; key: string };

const IngestClient = makeGenericClientConstructor(clientDefinition(Ingest), "Ingest");

// Answers every stream at once, before any message: identity is known from the handshake.
// Refusals are counted as AgentStream counts them.
function handler(call: ServerDuplexStream<Decoded<AgentMessage>, AggregatorMessage>): void {
  const admission = admitCall(call, { verdictOf: listener.verdictOf });
  call.on("data", () => undefined);
  call.on("error", () => undefined);
  if (!admission.ok) {
    metrics.streamsRefused.inc({ code: statusName(admission.code), reason: admission.reason });
    call.emit("error", { code: admission.code, details: admission.details });
    return;
  }
  handlerRuns += 1;
  const check = checkPeerIdentity(call);
  seen.push(check.ok ? check.identity : null);
  const { site, agent: name } = admission.identity;
  call.write(
    create(AggregatorMessageSchema, {
      kind: { case: "welcome", value: create(WelcomeSchema, { serverVersion: `${site}/${name}` }) },
    }),
  );
  call.end();
}

async function openStream(creds: ChannelCredentials): Promise<Outcome> {
  const client = new IngestClient(address, creds, CLIENT_OPTIONS);
  try {
    const stream = (
      client as unknown as { stream(o: CallOptions): ClientDuplexStream<AgentMessage, AggregatorMessage> }
    ).stream({ deadline: Date.now() + CALL_DEADLINE_MS });
    return await new Promise<Outcome>((resolve) => {
      let reply: AggregatorMessage | undefined;
      stream.on("data", (message: AggregatorMessage) => (reply = message));
      stream.on("error", (err: ServiceError) => resolve({ ok: false, code: err.code, details: err.details }));
      stream.on("status", (s: { code: status }) => {
        if (s.code === status.OK) resolve({ ok: true, reply });
      });
      stream.write(
        create(AgentMessageSchema, {
          kind: { case: "hello", value: create(HelloSchema, { site: "paris", agentId: "paris-01" }) },
        }),
      );
      stream.end();
    });
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "smbfleet-mtls-"));
  const fleet = join(root, "fleet");
  await initCa(fleet);
  serverFiles = await loadTlsFiles(await issueServer(fleet, { dns: ["localhost"], ip: ["127.0.0.1"] }));
  agent = await loadTlsFiles(await issueAgent(fleet, { site: "paris", agent: "paris-01" }));
  // Another fleet's CA issuing the very same names: only the signature differs.
  const other = join(root, "other");
  await initCa(other);
  rogue = await loadTlsFiles(await issueAgent(other, { site: "paris", agent: "paris-01" }));
  nameless = await loadTlsFiles(await agentWithoutUri(fleet));
  expired = await issueAgent(fleet, {
    site: "paris",
    agent: "paris-old",
    days: 30,
    now: new Date(Date.now() - 40 * 86_400_000),
  });

  server = new Server();
  server.addService(serverDefinition(Ingest, { maxMessageBytes: 1 << 20 }), { stream: handler });
  listener = await startTlsListener({
    server,
    listen: { host: "127.0.0.1", port: 0 },
    tls: serverFiles,
    onRefused: ({ reason }) => metrics.streamsRefused.inc({ code: "UNAVAILABLE", reason }),
  });
  address = `127.0.0.1:${listener.port}`;
});

afterAll(async () => {
  listener?.close();
  server?.forceShutdown();
  listener?.destroyAll();
  await rm(root, { recursive: true, force: true });
});

/** The refusal counter's value for `reason`. */
async function refused(reason: string): Promise<number> {
  const metric = await metrics.streamsRefused.get();
  return metric.values.filter((v) => v.labels["reason"] === reason).reduce((sum, v) => sum + v.value, 0);
}

/** refused(reason) once it has moved past `from`: a handshake refusal may trail the client's status by a tick. */
async function refusedAfter(reason: string, from: number): Promise<number> {
  for (let i = 0; i < 50 && (await refused(reason)) === from; i++)
    await new Promise((r) => setTimeout(r, 20));
  return refused(reason);
}

/** A clientAuth certificate from the fleet CA that names nobody: valid TLS, no identity. */
async function agentWithoutUri(fleet: string) {
  const paths = pkiPaths(fleet);
  const caCert = new X509Certificate(await readFile(paths.ca));
  const leaf = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const now = Date.now();
  const pem = createCertificate({
    role: { kind: "agent", altNames: { dns: ["paris-01"] } },
    subject: { organization: "smbfleet", organizationalUnit: "paris", commonName: "paris-01" },
    issuerName: rawSubject(caCert.raw),
    subjectPublicKey: leaf.publicKey,
    issuerPublicKey: caCert.publicKey,
    signingKey: createPrivateKey(await readFile(paths.caKey)),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
  });
  const files = { ca: paths.ca, cert: join(fleet, "nameless.pem"), key: join(fleet, "nameless-key.pem") };
  await writeFile(files.cert, pem);
  await writeFile(files.key, leaf.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  return files;
}

describe("ingest over mTLS", () => {
  it("lets a fleet agent in and shows the handler its site and agent", async () => {
    const before = handlerRuns;
    const outcome = await openStream(clientCredentials(agent));
    expect(outcome.ok).toBe(true);
    const reply = outcome.ok ? outcome.reply : undefined;
    expect(reply?.kind.case).toBe("welcome");
    expect(reply?.kind.value).toMatchObject({ serverVersion: "paris/paris-01" });
    expect(handlerRuns).toBe(before + 1);
    expect(seen.at(-1)).toEqual({ site: "paris", agent: "paris-01" });
  });

  // The handshake completes (the certificate is requested, not demanded), so
  // the client hears why with a status, and the refusal is counted by reason.
  it.each([
    [
      "no client certificate",
      () => credentials.createSsl(agent.ca),
      "no_client_certificate",
      "no client certificate",
    ],
    [
      "a certificate from another CA",
      () => clientCredentials({ ...rogue, ca: agent.ca }),
      "untrusted_certificate",
      "client certificate not issued by the fleet CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE)",
    ],
    [
      "a server certificate used as a client certificate",
      () => credentials.createSsl(agent.ca, serverFiles.key, serverFiles.cert),
      "bad_identity",
      "client certificate is not for client authentication (INVALID_PURPOSE)",
    ],
    [
      "an expired certificate",
      () => credentials.createSsl(agent.ca, readFileSync(expired.key), readFileSync(expired.cert)),
      "expired_certificate",
      expect.stringMatching(/^client certificate expired on .* \(CERT_HAS_EXPIRED\)$/) as unknown as string,
    ],
    [
      "a fleet certificate without an identity URI",
      () => clientCredentials(nameless),
      "bad_identity",
      "client certificate has no urn:smbfleet: URI SAN",
    ],
  ])("refuses %s with UNAUTHENTICATED and counts it", async (_name, creds, reason, details) => {
    const before = handlerRuns;
    const count = await refused(reason);
    const outcome = await openStream(creds());
    expect(outcome).toEqual({ ok: false, code: status.UNAUTHENTICATED, details });
    expect(handlerRuns).toBe(before);
    expect(await refusedAfter(reason, count)).toBe(count + 1);
  });

  it("refuses a plain-text client in the handshake and counts it as not_tls", async () => {
    const before = handlerRuns;
    const count = await refused("not_tls");
    const outcome = await openStream(credentials.createInsecure());
    expect(outcome).toMatchObject({ ok: false, code: status.UNAVAILABLE });
    expect(handlerRuns).toBe(before);
    expect(await refusedAfter("not_tls", count)).toBe(count + 1);
  });

  it("lets the agent refuse a server it cannot verify", async () => {
    const before = handlerRuns;
    const outcome = await openStream(clientCredentials({ ...agent, ca: rogue.ca }));
    expect(outcome).toMatchObject({ ok: false, code: status.UNAVAILABLE });
    expect(handlerRuns).toBe(before);
  });
});
