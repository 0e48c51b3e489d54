// node --expose-gc rss-child.ts postgres|both: loads postgres.js (and, with
// "both", node-postgres), collects garbage, and prints its RSS in bytes.
// Run by rss.ts, a fresh process per sample.
const which = process.argv[2];
await import("postgres");
if (which === "both") await import("pg");
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --expose-gc");
gc();
gc();
console.log(String(process.memoryUsage().rss));
