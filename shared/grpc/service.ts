// protoc-gen-es emits no grpc-js service definitions; this maps a GenService
// onto a grpc-js ServiceDefinition (path /<package.Service>/<Method>, with
// toBinary/fromBinary as (de)serialisers).
import {
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

/**
 * What a server-side deserializer yields: the message, or why the bytes were
 * not one. Decoding never throws inside grpc-js (which would end the call
 * with INTERNAL); the handler sees the failure and answers it in-band, so the
 * stream stays usable for valid data (test/ingest/bad-input.test.ts).
 */
export type Decoded<T> = { ok: true; message: T; size: number } | { ok: false; error: string; size: number };

export interface ServerCodecOptions {
  /** Larger messages are answered with a Reject (RESOURCE_EXHAUSTED) rather than decoded. */
  maxMessageBytes: number;
}

function methodPath(service: GenService<GenServiceMethods>, method: DescMethod): string {
  return `/${service.typeName}/${method.name}`;
}

/** The client-side definition: plain encode/decode; a decode failure ends the call. */
export function clientDefinition<T extends GenServiceMethods>(service: GenService<T>): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    def[method.localName] = {
      path: methodPath(service, method),
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (value: unknown) =>
        Buffer.from(toBinary(method.input, value as MessageShape<DescMessage>)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (value: unknown) =>
        Buffer.from(toBinary(method.output, value as MessageShape<DescMessage>)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
  }
  return def;
}

/** The server-side definition: requests decode to Decoded<T> and never throw. */
export function serverDefinition<T extends GenServiceMethods>(
  service: GenService<T>,
  options: ServerCodecOptions,
): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const base = clientDefinition(service)[method.localName] as MethodDefinition<unknown, unknown>;
    def[method.localName] = {
      ...base,
      requestDeserialize: (bytes: Buffer): Decoded<unknown> => {
        if (bytes.length > options.maxMessageBytes) {
          return {
            ok: false,
            size: bytes.length,
            error: `message of ${bytes.length} bytes is over the limit of ${options.maxMessageBytes}`,
          };
        }
        try {
          return { ok: true, size: bytes.length, message: fromBinary(method.input, bytes) };
        } catch (err) {
          return {
            ok: false,
            size: bytes.length,
            error: `malformed ${method.input.typeName}: ${String(err)}`,
          };
        }
      },
    };
  }
  return def;
}
