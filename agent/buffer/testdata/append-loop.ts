// Child process for agent/buffer/crash.test.ts: appends results one at a time
// and prints each seq only after append() returned (the commit is done), so
// every printed seq must survive the SIGKILL the test sends at a random moment.
// Bounded in count and time so that it ends even if nobody kills it.
import { writeSync } from "node:fs";
import { openBuffer } from "../buffer.ts";
import { sampleResult } from "./sample-result.ts";

const MAX_APPENDS = 100_000;
const MAX_RUN_MS = 20_000;

const path = process.argv[2];
if (path === undefined) throw new Error("usage: append-loop.ts BUFFER_PATH");
const buffer = openBuffer(path, { maxBytes: 1 << 30, maxAgeSeconds: 86_400 });
const until = Date.now() + MAX_RUN_MS;
for (let i = 0; i < MAX_APPENDS && Date.now() < until; i++) {
  const seq = buffer.append(sampleResult(i));
  // writeSync: a buffered stdout write could still be in our memory when the kill lands.
  writeSync(1, `${seq}\n`);
}
buffer.close();
