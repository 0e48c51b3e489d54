// A pino logger whose lines are kept, parsed, for tests that count what the
// aggregator writes.
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

export interface CapturedLog {
  logger: Logger;
  lines: Array<Record<string, unknown> & { msg?: string; level?: number }>;
}

export function captureLog(): CapturedLog {
  const lines: CapturedLog["lines"] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n"))
        if (line !== "") lines.push(JSON.parse(line) as never);
      done();
    },
  });
  return { logger: pino({ level: "info" }, sink), lines };
}
