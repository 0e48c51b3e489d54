// The aggregator's identity guarantee, over real grpc-js mTLS on loopback: a
// call reaches a handler only with a client certificate from the fleet CA,
// and the handler reads site and agent from that certificate. Certificates
// come from the PKI functions; the service is the real Ingest definition.
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
import { clientDefinition, serverDefinition, type Decoded } from "../../shared/grpc/service.ts";
import { createCertificate, rawSubject } from "../../shared/tls/certificate.ts";
import { clientCredentials, serverCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles, type TlsFiles } from "../../shared/tls/files.ts";
import { checkPeerIdentity, peerIdentity, type FleetIdentity } from "../../shared/tls/identity.ts";
import { initCa, issueAgent, issueServer, pkiPaths } from "../../shared/tls/pki.ts";

/** A refused handshake fails at once; this only keeps a broken test from hanging. */
const CALL_DEADLINE_MS = 10_000;
/** Each client gets its own connection, so one case's channel cannot serve another's call. */
const CLIENT_OPTIONS = { "grpc.use_local_subchannel_pool": 1 };

type Outcome =
  { ok: true; reply: AggregatorMessage | undefined } | { ok: false; code: status; details: string };

let root: string;
let server: Server;
let address: string;
let handlerRuns = 0;
const seen: (FleetIdentity | null)[] = [];
let agent: TlsFiles;
let rogue: TlsFiles;
let serverFiles: TlsFiles;
let nameless: TlsFiles;

const IngestClient = makeGenericClientConstructor(clientDefinition(Ingest), "Ingest");

// Answers every stream at once, before any message: identity is known from the handshake.
function handler(call: ServerDuplexStream<Decoded<AgentMessage>, AggregatorMessage>): void {
  handlerRuns += 1;
  seen.push(peerIdentity(call));
  const check = checkPeerIdentity(call);
  call.on("data", () => undefined);
  call.on("error", () => undefined);
  if (!check.ok) {
    call.emit("error", { code: status.UNAUTHENTICATED, details: check.reason });
    return;
  }
  const { site, agent: name } = check.identity;
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

  server = new Server();
  server.addService(serverDefinition(Ingest, { maxMessageBytes: 1 << 20 }), { stream: handler });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", serverCredentials(serverFiles), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  address = `127.0.0.1:${port}`;
});

afterAll(async () => {
  server?.forceShutdown();
  await rm(root, { recursive: true, force: true });
});

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

  // The handshake fails, so grpc-js never gets a connection to run the call on:
  // the client sees UNAVAILABLE and no handler runs.
  it.each([
    ["no client certificate", () => credentials.createSsl(agent.ca)],
    ["a certificate from another CA", () => clientCredentials({ ...rogue, ca: agent.ca })],
    [
      "a server certificate used as a client certificate",
      () => credentials.createSsl(agent.ca, serverFiles.key, serverFiles.cert),
    ],
    ["a plain-text client", () => credentials.createInsecure()],
  ])("refuses %s before any handler runs", async (_name, creds) => {
    const before = handlerRuns;
    const outcome = await openStream(creds());
    expect(outcome).toMatchObject({ ok: false, code: status.UNAVAILABLE });
    expect(handlerRuns).toBe(before);
  });

  it("gives a fleet certificate without an identity URI no identity", async () => {
    const before = handlerRuns;
    const outcome = await openStream(clientCredentials(nameless));
    expect(outcome).toEqual({
      ok: false,
      code: status.UNAUTHENTICATED,
      details: "client certificate has no urn:smbfleet: URI SAN",
    });
    expect(handlerRuns).toBe(before + 1);
    expect(seen.at(-1)).toBeNull();
  });

  it("lets the agent refuse a server it cannot verify", async () => {
    const before = handlerRuns;
    const outcome = await openStream(clientCredentials({ ...agent, ca: rogue.ca }));
    expect(outcome).toMatchObject({ ok: false, code: status.UNAVAILABLE });
    expect(handlerRuns).toBe(before);
  });
});
