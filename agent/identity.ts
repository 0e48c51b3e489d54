// Who this agent is. With an [aggregator] and a certificate, the certificate
// is the authority (the aggregator reads site and agent from it and refuses a
// Hello that disagrees), so the agent checks the same thing at start-up and
// refuses to run with a config that HQ would refuse anyway.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { AgentConfig } from "../shared/config/types.ts";
import { SmbfleetError, errorMessage } from "../shared/errors.ts";
import { checkPeerCertificate } from "../shared/tls/identity.ts";

export interface AgentIdentity {
  site: string;
  agentId: string;
}

/**
 * The agent's id and site: [agent] id/site when set, else the certificate's
 * names, else (standalone) the host name and an empty site. Throws
 * CONFIG_INVALID when the configured names disagree with the certificate.
 */
export function resolveAgentIdentity(config: AgentConfig): AgentIdentity {
  const certPath = config.aggregator !== null && !config.aggregator.insecure ? config.aggregator.cert : null;
  if (certPath === null) {
    return { site: config.agent.site ?? "", agentId: config.agent.id ?? hostname() };
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certPath));
  } catch (err) {
    throw new SmbfleetError(
      "CONFIG_INVALID",
      `aggregator.cert: cannot read ${certPath}: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  const check = checkPeerCertificate(cert);
  if (!check.ok) throw new SmbfleetError("CONFIG_INVALID", `aggregator.cert: ${certPath}: ${check.reason}`);
  const { site, agent } = check.identity;
  if (config.agent.site !== null && config.agent.site !== site) {
    throw new SmbfleetError(
      "CONFIG_INVALID",
      `agent.site is "${config.agent.site}" but the certificate ${certPath} is for site "${site}"`,
    );
  }
  if (config.agent.id !== null && config.agent.id !== agent) {
    throw new SmbfleetError(
      "CONFIG_INVALID",
      `agent.id is "${config.agent.id}" but the certificate ${certPath} is for agent "${agent}"`,
    );
  }
  return { site, agentId: agent };
}
