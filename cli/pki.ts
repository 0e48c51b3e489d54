// `smbfleet pki init | issue-server | issue-agent | revoke`: the operator's way
// to the files that shared/tls/pki.ts and revoke.ts write. Bad input (unknown option, invalid
// name, unparsable --days) exits 2 and writes nothing; a refusal to overwrite
// or a missing CA exits 1.
import { parseArgs } from "node:util";
import { SmbfleetError, errorMessage, isSmbfleetError } from "../shared/errors.ts";
import { dnsNameProblem, fleetNameProblem, identityUri, ipAddressProblem } from "../shared/tls/names.ts";
import { normalizeSerial, normalizeSha256, type RevokedCertificate } from "../shared/tls/revocation.ts";
import { PKI_DEFAULTS, initCa, issueAgent, issueServer, type IssueOptions } from "../shared/tls/pki.ts";
import { revokeCertificates, type RevokeSelector } from "../shared/tls/revoke.ts";
import type { CommandIo } from "../shared/command-io.ts";

export const PKI_USAGE = `usage: smbfleet pki <subcommand> --dir D [options]

  init          --dir D [--days N] [--force]
                create the fleet CA: D/ca.pem and D/ca-key.pem (0600); D is created 0700
  issue-server  --dir D (--dns NAME | --ip ADDR)... [--days N] [--force]
                the aggregator's certificate: D/server.pem and D/server-key.pem (0600),
                with a subject alternative name for every --dns and --ip
  issue-agent   --dir D --site S --agent A [--days N] [--force]
                an agent's certificate: D/agents/A.pem and D/agents/A-key.pem (0600),
                recorded in D/issued.jsonl; with --force the certificate it replaces
                is revoked (added to D/revoked.json as superseded)
  revoke        --dir D (--agent A [--all] | --serial S | --fingerprint F)
                add to D/revoked.json the agent's current certificate (D/agents/A.pem),
                with --all every certificate ever issued to it, or the certificate with
                that serial or SHA-256 fingerprint (hex, colons allowed)

Keys are ECDSA P-256. Certificates are valid ${PKI_DEFAULTS.caDays} days (CA) or ${PKI_DEFAULTS.leafDays} days (others)
unless --days says otherwise. Existing files are never replaced without --force.

An agent certificate names the agent and its site: subject CN=A, OU=S, O=smbfleet, and the
URI urn:smbfleet:site:S:agent:A. The URI is what the aggregator trusts. Site and agent
names are 1-63 characters of a-z, 0-9, '-', '_' and '.', starting with a letter or digit.

D/ca-key.pem is needed only to issue certificates: keep it off the aggregator and the agents.
The aggregator reads D/revoked.json (or the copy its [tls] revoked names) and re-reads it
when it changes: a revoked certificate is refused at connect and its open streams end
within seconds.
`;

const OPTIONS = {
  dir: { type: "string" },
  days: { type: "string" },
  force: { type: "boolean" },
  dns: { type: "string", multiple: true },
  ip: { type: "string", multiple: true },
  site: { type: "string" },
  agent: { type: "string" },
  all: { type: "boolean" },
  serial: { type: "string" },
  fingerprint: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

/** Which options each subcommand takes; anything else is a usage error, not silently ignored. */
const ALLOWED: Record<string, readonly (keyof Values)[]> = {
  init: ["dir", "days", "force"],
  "issue-server": ["dir", "days", "force", "dns", "ip"],
  "issue-agent": ["dir", "days", "force", "site", "agent"],
  revoke: ["dir", "agent", "all", "serial", "fingerprint"],
};

function usageError(message: string): SmbfleetError {
  return new SmbfleetError("USAGE", message);
}

function commonOptions(sub: string, values: Values): { dir: string; opts: IssueOptions } {
  for (const key of Object.keys(values) as (keyof Values)[]) {
    if (key !== "help" && !(ALLOWED[sub] ?? []).includes(key))
      throw usageError(`--${key} does not apply to ${sub}`);
  }
  if (values.dir === undefined || values.dir === "") throw usageError("--dir is required");
  const opts: IssueOptions = { force: values.force === true };
  if (values.days !== undefined) {
    if (!/^\d+$/.test(values.days))
      throw usageError(`--days ${JSON.stringify(values.days)}: not a whole number`);
    const days = Number(values.days);
    if (days < 1 || days > PKI_DEFAULTS.maxDays)
      throw usageError(`--days ${days}: must be from 1 to ${PKI_DEFAULTS.maxDays}`);
    opts.days = days;
  }
  return { dir: values.dir, opts };
}

const day = (date: Date) => date.toISOString().slice(0, 10);

async function init(values: Values, io: CommandIo): Promise<void> {
  const { dir, opts } = commonOptions("init", values);
  const files = await initCa(dir, opts);
  io.stdout(`wrote ${files.cert} (fleet CA certificate, valid until ${day(files.notAfter)})\n`);
  io.stdout(`wrote ${files.key} (CA private key, mode 0600: keep it off the aggregator and the agents)\n`);
}

async function server(values: Values, io: CommandIo): Promise<void> {
  const { dir, opts } = commonOptions("issue-server", values);
  const dns = values.dns ?? [];
  const ip = values.ip ?? [];
  if (dns.length === 0 && ip.length === 0)
    throw usageError("at least one --dns NAME or --ip ADDR is required");
  const problems = [...dns.map(dnsNameProblem), ...ip.map(ipAddressProblem)].filter((p) => p !== null);
  if (problems.length > 0) throw usageError(problems.join("\n"));
  const files = await issueServer(dir, { ...opts, dns, ip });
  const names = [...dns.map((n) => `DNS:${n}`), ...ip.map((a) => `IP:${a}`)].join(", ");
  io.stdout(
    `wrote ${files.cert} (aggregator certificate for ${names}, valid until ${day(files.notAfter)}${limit(files)})\n`,
  );
  io.stdout(`wrote ${files.key} (private key, mode 0600)\n`);
}

async function agent(values: Values, io: CommandIo): Promise<void> {
  const { dir, opts } = commonOptions("issue-agent", values);
  if (values.site === undefined) throw usageError("--site is required");
  if (values.agent === undefined) throw usageError("--agent is required");
  const identity = { site: values.site, agent: values.agent };
  const problems = [fleetNameProblem("site", identity.site), fleetNameProblem("agent", identity.agent)];
  const found = problems.filter((p) => p !== null);
  if (found.length > 0) throw usageError(found.join("\n"));
  const files = await issueAgent(dir, { ...opts, ...identity });
  io.stdout(
    `wrote ${files.cert} (agent ${identity.agent} of site ${identity.site}, ${identityUri(identity)}, ` +
      `valid until ${day(files.notAfter)}${limit(files)}; serial ${files.serial}, sha256 ${files.sha256})\n`,
  );
  io.stdout(`wrote ${files.key} (private key, mode 0600)\n`);
  if (files.superseded !== null) {
    io.stdout(
      `revoked ${describe(files.superseded)} (superseded) in ${files.revocationList}: ${REACHES_AGGREGATOR}\n`,
    );
  }
  io.stdout(`the agent's [aggregator] needs: ca = ${files.ca}, cert = ${files.cert}, key = ${files.key}\n`);
}

const REACHES_AGGREGATOR =
  "an aggregator whose [tls] revoked is this file (or a copy) refuses what it lists within seconds";

function describe(c: RevokedCertificate): string {
  const who = c.agent === null ? "" : ` (agent ${c.agent}${c.site === null ? "" : ` of site ${c.site}`})`;
  const id = [
    c.serial === null ? null : `serial ${c.serial}`,
    c.sha256 === null ? null : `sha256 ${c.sha256}`,
  ];
  return `certificate ${id.filter((p) => p !== null).join(", ")}${who}`;
}

async function revoke(values: Values, io: CommandIo): Promise<void> {
  const { dir } = commonOptions("revoke", values);
  const chosen = [values.agent, values.serial, values.fingerprint].filter((v) => v !== undefined);
  if (chosen.length !== 1) throw usageError("give exactly one of --agent A, --serial S, --fingerprint F");
  if (values.all === true && values.agent === undefined) throw usageError("--all goes with --agent");
  let selector: RevokeSelector;
  if (values.agent !== undefined) {
    const problem = fleetNameProblem("agent", values.agent);
    if (problem !== null) throw usageError(problem);
    selector = { agent: values.agent, all: values.all === true };
  } else if (values.serial !== undefined) {
    if (normalizeSerial(values.serial) === null)
      throw usageError(`--serial ${JSON.stringify(values.serial)}: not a hexadecimal serial`);
    selector = { serial: values.serial };
  } else {
    const fingerprint = values.fingerprint ?? "";
    if (normalizeSha256(fingerprint) === null)
      throw usageError(
        `--fingerprint ${JSON.stringify(fingerprint)}: not a SHA-256 fingerprint (64 hex digits)`,
      );
    selector = { sha256: fingerprint };
  }
  const outcome = await revokeCertificates(dir, selector);
  for (const r of outcome.revocations) {
    io.stdout(
      r.already ? `already revoked: ${describe(r.certificate)}\n` : `revoked ${describe(r.certificate)}\n`,
    );
  }
  if (outcome.unindexed) io.stdout("(not in issued.jsonl: listed by what was given)\n");
  io.stdout(
    `${outcome.file} lists ${outcome.listed} certificate${outcome.listed === 1 ? "" : "s"}; ${REACHES_AGGREGATOR}\n`,
  );
}

function limit(files: { limitedByCa: boolean }): string {
  return files.limitedByCa ? ", cut to the CA's own expiry" : "";
}

const SUBCOMMANDS: Record<string, (values: Values, io: CommandIo) => Promise<void>> = {
  init,
  "issue-server": server,
  "issue-agent": agent,
  revoke,
};

export async function run(
  argv: readonly string[],
  _env: NodeJS.ProcessEnv,
  _signal: AbortSignal,
  io: CommandIo,
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    io.stdout(PKI_USAGE);
    return sub === undefined ? 2 : 0;
  }
  const action = SUBCOMMANDS[sub];
  if (action === undefined) {
    io.stderr(`smbfleet pki: unknown subcommand '${sub}'\n\n${PKI_USAGE}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...rest],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    if (values.help === true) {
      io.stdout(PKI_USAGE);
      return 0;
    }
    if (positionals.length > 0) throw usageError(`unexpected argument '${positionals[0]}'`);
    await action(values, io);
    return 0;
  } catch (err) {
    // parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes for unknown or malformed options.
    const code = (err as { code?: unknown }).code;
    const usage =
      isSmbfleetError(err, "USAGE") || (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"));
    if (!usage && !isSmbfleetError(err)) throw err;
    io.stderr(`smbfleet pki ${sub}: ${errorMessage(err)}\n`);
    if (usage) io.stderr(`Run 'smbfleet pki --help' for the options.\n`);
    return usage ? 2 : 1;
  }
}
