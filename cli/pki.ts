// `smbfleet pki init | issue-server | issue-agent`: the operator's way to the
// files that shared/tls/pki.ts writes. Bad input (unknown option, invalid
// name, unparsable --days) exits 2 and writes nothing; a refusal to overwrite
// or a missing CA exits 1.
import { parseArgs } from "node:util";
import { SmbfleetError, errorMessage, isSmbfleetError } from "../shared/errors.ts";
import { dnsNameProblem, fleetNameProblem, identityUri, ipAddressProblem } from "../shared/tls/names.ts";
import { PKI_DEFAULTS, initCa, issueAgent, issueServer, type IssueOptions } from "../shared/tls/pki.ts";
import type { CommandIo } from "../shared/command-io.ts";

export const PKI_USAGE = `usage: smbfleet pki <subcommand> --dir D [options]

  init          --dir D [--days N] [--force]
                create the fleet CA: D/ca.pem and D/ca-key.pem (0600); D is created 0700
  issue-server  --dir D (--dns NAME | --ip ADDR)... [--days N] [--force]
                the aggregator's certificate: D/server.pem and D/server-key.pem (0600),
                with a subject alternative name for every --dns and --ip
  issue-agent   --dir D --site S --agent A [--days N] [--force]
                an agent's certificate: D/agents/A.pem and D/agents/A-key.pem (0600)

Keys are ECDSA P-256. Certificates are valid ${PKI_DEFAULTS.caDays} days (CA) or ${PKI_DEFAULTS.leafDays} days (others)
unless --days says otherwise. Existing files are never replaced without --force.

An agent certificate names the agent and its site: subject CN=A, OU=S, O=smbfleet, and the
URI urn:smbfleet:site:S:agent:A. The URI is what the aggregator trusts. Site and agent
names are 1-63 characters of a-z, 0-9, '-', '_' and '.', starting with a letter or digit.

D/ca-key.pem is needed only to issue certificates: keep it off the aggregator and the agents.
`;

const OPTIONS = {
  dir: { type: "string" },
  days: { type: "string" },
  force: { type: "boolean" },
  dns: { type: "string", multiple: true },
  ip: { type: "string", multiple: true },
  site: { type: "string" },
  agent: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

/** Which options each subcommand takes; anything else is a usage error, not silently ignored. */
const ALLOWED: Record<string, readonly (keyof Values)[]> = {
  init: ["dir", "days", "force"],
  "issue-server": ["dir", "days", "force", "dns", "ip"],
  "issue-agent": ["dir", "days", "force", "site", "agent"],
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
      `valid until ${day(files.notAfter)}${limit(files)})\n`,
  );
  io.stdout(`wrote ${files.key} (private key, mode 0600)\n`);
  io.stdout(`the agent's [aggregator] needs: ca = ${files.ca}, cert = ${files.cert}, key = ${files.key}\n`);
}

function limit(files: { limitedByCa: boolean }): string {
  return files.limitedByCa ? ", cut to the CA's own expiry" : "";
}

const SUBCOMMANDS: Record<string, (values: Values, io: CommandIo) => Promise<void>> = {
  init,
  "issue-server": server,
  "issue-agent": agent,
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
