import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAgentConfig } from "../shared/config/agent.ts";
import { initCa, issueAgent } from "../shared/tls/pki.ts";
import { resolveAgentIdentity } from "./identity.ts";

let dir: string;
let files: { ca: string; cert: string; key: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "smbfleet-identity-"));
  await initCa(join(dir, "pki"));
  files = await issueAgent(join(dir, "pki"), { site: "paris", agent: "paris-01" });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(agentSection: string) {
  const file = join(dir, `agent-${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(
    file,
    `${agentSection}
[aggregator]
url = "127.0.0.1:9740"
ca = "${files.ca}"
cert = "${files.cert}"
key = "${files.key}"

[[probes]]
address = "127.0.0.1"
domain = "WORKGROUP"
share = "data"
username = "u"
password = "$ENV_PW"
remote_basedir = "."
interval = 60
`,
  );
  return loadAgentConfig(file, { PW: "secret" });
}

describe("resolveAgentIdentity", () => {
  it("takes the agent id from the certificate when [agent] id is unset", () => {
    expect(resolveAgentIdentity(config(`[agent]\nsite = "paris"`))).toEqual({
      site: "paris",
      agentId: "paris-01",
    });
  });

  it("refuses a site that is not the certificate's", () => {
    expect(() => resolveAgentIdentity(config(`[agent]\nsite = "berlin"`))).toThrow(
      /agent\.site is "berlin" but the certificate .* is for site "paris"/,
    );
  });

  it("refuses an id that is not the certificate's", () => {
    expect(() => resolveAgentIdentity(config(`[agent]\nsite = "paris"\nid = "paris-02"`))).toThrow(
      /agent\.id is "paris-02" but the certificate .* is for agent "paris-01"/,
    );
  });
});
