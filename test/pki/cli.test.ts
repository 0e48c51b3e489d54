// `smbfleet pki` as an operator runs it, through the same dispatcher as main.ts.
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../cli/run.ts";

const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const NAME_RULE =
  "must be 1-63 characters of lowercase letters, digits, '-', '_' and '.', starting with a letter or digit";

let root: string;
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "smbfleet-pki-cli-"));
  dir = join(root, "nested", "pki");
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function pki(...args: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runCli(["pki", ...args], {}, new AbortController().signal, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const cert = async (path: string) => new X509Certificate(await readFile(path));

async function expectIssuedByCa(path: string) {
  const ca = await cert(join(dir, "ca.pem"));
  const leaf = await cert(path);
  expect(leaf.checkIssued(ca)).toBe(true);
  expect(leaf.verify(ca.publicKey)).toBe(true);
  return leaf;
}

describe("smbfleet pki init", () => {
  it("creates the CA with a 0600 key in a new 0700 directory", async () => {
    const result = await pki("init", "--dir", dir);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toMatch(
      new RegExp(
        `^wrote ${join(dir, "ca.pem")} \\(fleet CA certificate, valid until \\d{4}-\\d\\d-\\d\\d\\)\\n`,
      ),
    );
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(join(dir, "ca-key.pem"))).toBe(0o600);
    const ca = await cert(join(dir, "ca.pem"));
    expect(ca.ca).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
  });

  it("refuses to overwrite an existing CA unless --force", async () => {
    await pki("init", "--dir", dir);
    const key = await readFile(join(dir, "ca-key.pem"));
    const again = await pki("init", "--dir", dir);
    expect(again).toEqual({
      code: 1,
      stdout: "",
      stderr: `smbfleet pki init: ${join(dir, "ca-key.pem")} already exists; use --force to replace it\n`,
    });
    expect(await readFile(join(dir, "ca-key.pem"))).toEqual(key);
    expect((await pki("init", "--dir", dir, "--force")).code).toBe(0);
    expect(await readFile(join(dir, "ca-key.pem"))).not.toEqual(key);
  });

  it("takes --days", async () => {
    expect((await pki("init", "--dir", dir, "--days", "30")).code).toBe(0);
    const ca = await cert(join(dir, "ca.pem"));
    const days = (ca.validToDate.getTime() - ca.validFromDate.getTime()) / 86_400_000;
    expect(Math.round(days)).toBe(30);
  });
});

describe("smbfleet pki issue-server", () => {
  it("writes a serverAuth certificate with every --dns and --ip", async () => {
    await pki("init", "--dir", dir);
    const result = await pki(
      "issue-server",
      "--dir",
      dir,
      "--dns",
      "localhost",
      "--dns",
      "hq.example.com",
      "--ip",
      "127.0.0.1",
      "--ip",
      "::1",
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      "aggregator certificate for DNS:localhost, DNS:hq.example.com, IP:127.0.0.1, IP:::1",
    );
    expect(await mode(join(dir, "server-key.pem"))).toBe(0o600);
    const leaf = await expectIssuedByCa(join(dir, "server.pem"));
    expect(leaf.keyUsage).toEqual([SERVER_AUTH]);
    expect(leaf.subjectAltName).toBe(
      "DNS:localhost, DNS:hq.example.com, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
    );
  });

  it("needs a name, and refuses bad ones", async () => {
    await pki("init", "--dir", dir);
    expect(await pki("issue-server", "--dir", dir)).toMatchObject({
      code: 2,
      stderr:
        "smbfleet pki issue-server: at least one --dns NAME or --ip ADDR is required\nRun 'smbfleet pki --help' for the options.\n",
    });
    expect(await pki("issue-server", "--dir", dir, "--ip", "10.0.0.300")).toMatchObject({
      code: 2,
      stderr: `smbfleet pki issue-server: IP address "10.0.0.300" is invalid\nRun 'smbfleet pki --help' for the options.\n`,
    });
    expect((await readdir(dir)).sort()).toEqual(["ca-key.pem", "ca.pem"]);
  });
});

describe("smbfleet pki issue-agent", () => {
  it("writes a clientAuth certificate naming the agent and its site", async () => {
    await pki("init", "--dir", dir);
    const result = await pki("issue-agent", "--dir", dir, "--site", "paris", "--agent", "paris-01");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("urn:smbfleet:site:paris:agent:paris-01");
    expect(await mode(join(dir, "agents", "paris-01-key.pem"))).toBe(0o600);
    const leaf = await expectIssuedByCa(join(dir, "agents", "paris-01.pem"));
    expect(leaf.keyUsage).toEqual([CLIENT_AUTH]);
    expect(leaf.subject).toBe("O=smbfleet\nOU=paris\nCN=paris-01");
    expect(leaf.subjectAltName).toBe("URI:urn:smbfleet:site:paris:agent:paris-01");
  });

  it.each([
    [["--site", "Paris", "--agent", "a1"], `site name "Paris" is invalid: it ${NAME_RULE}`],
    [["--site", "paris", "--agent", "a:1"], `agent name "a:1" is invalid: it ${NAME_RULE}`],
    [["--site", "paris", "--agent", "../etc"], `agent name "../etc" is invalid: it ${NAME_RULE}`],
    [
      ["--site", "p", "--agent", "x".repeat(64)],
      `agent name "${"x".repeat(64)}" is invalid: it ${NAME_RULE}`,
    ],
    [["--site", "paris"], "--agent is required"],
  ])("refuses %j with a clear message and writes nothing", async (args, message) => {
    await pki("init", "--dir", dir);
    expect(await pki("issue-agent", "--dir", dir, ...args)).toEqual({
      code: 2,
      stdout: "",
      stderr: `smbfleet pki issue-agent: ${message}\nRun 'smbfleet pki --help' for the options.\n`,
    });
    expect((await readdir(dir)).sort()).toEqual(["ca-key.pem", "ca.pem"]);
  });

  it("says to run init first when there is no CA", async () => {
    const result = await pki("issue-agent", "--dir", dir, "--site", "s", "--agent", "a");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/; run 'smbfleet pki init --dir .*' first\n$/);
  });
});

describe("smbfleet pki revoke", () => {
  const listed = async () =>
    (JSON.parse(await readFile(join(dir, "revoked.json"), "utf8")) as { revoked: Record<string, string>[] })
      .revoked;

  it("issue-agent --force revokes the certificate it replaces; revoke lists the current one", async () => {
    await pki("init", "--dir", dir);
    await pki("issue-agent", "--dir", dir, "--site", "paris", "--agent", "paris-01");
    const old = await cert(join(dir, "agents", "paris-01.pem"));
    const again = await pki("issue-agent", "--dir", dir, "--site", "paris", "--agent", "paris-01", "--force");
    expect(again.code).toBe(0);
    const serial = old.serialNumber.toLowerCase();
    expect(again.stdout).toContain(
      `revoked certificate serial ${serial}, sha256 ${old.fingerprint256.replaceAll(":", "").toLowerCase()} ` +
        `(agent paris-01 of site paris) (superseded) in ${join(dir, "revoked.json")}: `,
    );
    expect(await listed()).toEqual([
      expect.objectContaining({ serial, agent: "paris-01", reason: "superseded" }),
    ]);

    const current = (await cert(join(dir, "agents", "paris-01.pem"))).serialNumber.toLowerCase();
    const revoke = await pki("revoke", "--dir", dir, "--agent", "paris-01");
    expect(revoke).toMatchObject({ code: 0, stderr: "" });
    expect(revoke.stdout).toMatch(new RegExp(`^revoked certificate serial ${current}, sha256 [0-9a-f]{64} `));
    expect(revoke.stdout).toContain(`${join(dir, "revoked.json")} lists 2 certificates; `);
    const all = await pki("revoke", "--dir", dir, "--agent", "paris-01", "--all");
    expect(all.stdout.match(/^already revoked: /gm)).toHaveLength(2);
    const issued = (await readFile(join(dir, "issued.jsonl"), "utf8")).trim().split("\n");
    expect(issued.map((l) => (JSON.parse(l) as { serial: string }).serial)).toEqual([serial, current]);
  });

  it("revokes by serial or fingerprint, and says when it does not know one", async () => {
    await pki("init", "--dir", dir);
    await pki("issue-agent", "--dir", dir, "--site", "paris", "--agent", "paris-01");
    const leaf = await cert(join(dir, "agents", "paris-01.pem"));
    expect((await pki("revoke", "--dir", dir, "--fingerprint", leaf.fingerprint256)).stdout).toMatch(
      /^revoked certificate serial [0-9a-f]+, sha256 [0-9a-f]{64} \(agent paris-01 of site paris\)\n/,
    );
    const unknown = await pki("revoke", "--dir", dir, "--serial", "0A:BC");
    expect(unknown.stdout).toMatch(
      /^revoked certificate serial abc\n\(not in issued\.jsonl: listed by what was given\)\n/,
    );
    expect((await listed()).map((e) => e["serial"])).toEqual([leaf.serialNumber.toLowerCase(), "abc"]);
  });

  it.each([
    [["--agent", "a", "--serial", "1"], "give exactly one of --agent A, --serial S, --fingerprint F"],
    [["--serial", "1", "--all"], "--all goes with --agent"],
    [["--serial", "xyz"], '--serial "xyz": not a hexadecimal serial'],
    [["--fingerprint", "ab:cd"], '--fingerprint "ab:cd": not a SHA-256 fingerprint (64 hex digits)'],
    [["--agent", "a", "--force"], "--force does not apply to revoke"],
  ])("refuses %j as a usage error", async (args, message) => {
    expect(await pki("revoke", "--dir", dir, ...args)).toEqual({
      code: 2,
      stdout: "",
      stderr: `smbfleet pki revoke: ${message}\nRun 'smbfleet pki --help' for the options.\n`,
    });
  });

  it("exits 1 naming what is missing", async () => {
    await pki("init", "--dir", dir);
    const result = await pki("revoke", "--dir", dir, "--agent", "ghost");
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `smbfleet pki revoke: ${join(dir, "agents", "ghost.pem")} does not exist, so agent ghost has no current ` +
        "certificate; --all revokes every certificate issued to it, --serial or --fingerprint one of them\n",
    );
  });
});

describe("smbfleet pki command line", () => {
  it.each([
    [["frob"], 2, /^smbfleet pki: unknown subcommand 'frob'\n\nusage: smbfleet pki/],
    [["init"], 2, /^smbfleet pki init: --dir is required\n/],
    [["init", "--dir", "d", "--days", "2w"], 2, /^smbfleet pki init: --days "2w": not a whole number\n/],
    [["init", "--dir", "d", "--days", "0"], 2, /^smbfleet pki init: --days 0: must be from 1 to 36500\n/],
    [["init", "--dir", "d", "--site", "x"], 2, /^smbfleet pki init: --site does not apply to init\n/],
    [["init", "--dir", "d", "extra"], 2, /^smbfleet pki init: unexpected argument 'extra'\n/],
    [["init", "--nope"], 2, /^smbfleet pki init: Unknown option '--nope'/],
  ])("%j exits %i", async (args, code, stderr) => {
    const result = await pki(...args);
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(stderr);
  });

  it("prints its usage for --help", async () => {
    const result = await pki("--help");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("issue-agent   --dir D --site S --agent A");
    expect(result.stdout).toContain("urn:smbfleet:site:S:agent:A");
  });
});
