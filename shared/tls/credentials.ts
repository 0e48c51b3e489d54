// grpc-js credentials for the two ends of the ingest stream. Both sides
// present a certificate and check the other's against the fleet CA. The
// aggregator itself terminates TLS with node:tls so that it can count and
// explain refusals (aggregator/ingest/admission/tls-listener.ts);
// serverCredentials is grpc-js's own way, used by test stubs.
import { ServerCredentials, credentials, type ChannelCredentials } from "@grpc/grpc-js";
import type { TlsFiles } from "./files.ts";

type TlsMaterial = Pick<TlsFiles, "ca" | "cert" | "key">;

/** mTLS required: a client without a certificate issued by `files.ca` fails the handshake. */
export function serverCredentials(files: TlsMaterial): ServerCredentials {
  return ServerCredentials.createSsl(files.ca, [{ cert_chain: files.cert, private_key: files.key }], true);
}

/**
 * The agent's side: trusts only the fleet CA (not the system roots) and
 * presents the agent certificate. The server's certificate must name the host
 * the agent dials (DNS or IP SAN); a channel option
 * `grpc.ssl_target_name_override` can name another when dialling by address.
 */
export function clientCredentials(files: TlsMaterial): ChannelCredentials {
  return credentials.createSsl(files.ca, files.key, files.cert);
}
