// Channel credentials for the aggregator: mTLS from the PEM files the config
// names (checked by shared/tls before use, so a bad file is named in the log
// rather than failing as an opaque handshake error), or plain text only when
// the operator said insecure = true. The files are read at every connection
// attempt, so a renewed certificate is picked up on the next reconnect
// without restarting the agent.
import { credentials, type ChannelCredentials } from "@grpc/grpc-js";
import type { AggregatorSection } from "../../shared/config/types.ts";
import { SmbfleetError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import { clientCredentials } from "../../shared/tls/credentials.ts";
import { loadTlsFiles } from "../../shared/tls/files.ts";

export async function channelCredentials(
  aggregator: AggregatorSection,
  logger: Logger,
): Promise<ChannelCredentials> {
  if (aggregator.insecure) return credentials.createInsecure();
  const { ca, cert, key } = aggregator;
  if (ca === null || cert === null || key === null) {
    throw new SmbfleetError(
      "CONFIG_INVALID",
      "aggregator: ca, cert and key are all required unless insecure = true",
    );
  }
  const files = await loadTlsFiles({ ca, cert, key });
  for (const warning of files.warnings) logger.warn({ file: cert }, warning);
  return clientCredentials(files);
}
