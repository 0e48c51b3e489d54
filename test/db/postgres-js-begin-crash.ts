// node postgres-js-begin-crash.ts URL — porsager/postgres#1208 as smbfleet
// met it: a statement of sql.begin() is running when its backend is
// terminated. The transaction rejects CONNECTION_CLOSED as it should, then
// postgres.js writes its own ROLLBACK to the closed connection and the
// process dies of an uncaught TypeError. Run by test/db/transaction.test.ts,
// which expects exit 1 and "survived" never printed.
import postgres from "postgres";

const url = process.argv[2];
if (url === undefined) throw new Error("usage: postgres-js-begin-crash.ts URL");
const sql = postgres(url, { max: 2, onnotice: () => {} });
const admin = postgres(url, { max: 1, onnotice: () => {} });

let pid: number | null = null;
const tx = sql
  .begin(async (t) => {
    pid = (await t`SELECT pg_backend_pid() AS pid`)[0]!["pid"] as number;
    await t`SELECT pg_sleep(10)`;
  })
  .then(
    () => console.log("transaction committed"),
    (err: unknown) => console.log(`transaction rejected: ${String((err as { code?: unknown }).code)}`),
  );
while (pid === null) await new Promise((r) => setTimeout(r, 10));
await admin`SELECT pg_terminate_backend(${pid})`;
await tx;
// The crash comes from a setImmediate after the rejection; give it time to.
await new Promise((r) => setTimeout(r, 1_000));
console.log("survived");
await sql.end({ timeout: 1 });
await admin.end({ timeout: 1 });
