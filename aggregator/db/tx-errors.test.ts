import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { PG_CONNECTION_MESSAGES, classifyTxError, type TxErrorCode } from "./tx-errors.ts";

const pgError = (code: string, message = "x"): Error => Object.assign(new Error(message), { code });

describe("classifyTxError", () => {
  const cases: [string, Error, boolean, TxErrorCode][] = [
    ["serialization failure", pgError("40001"), false, "DB_CONFLICT"],
    ["serialization failure at COMMIT (answered: rolled back)", pgError("40001"), true, "DB_CONFLICT"],
    ["deadlock", pgError("40P01"), false, "DB_CONFLICT"],
    ["lock_timeout", pgError("55P03"), false, "DB_CONFLICT"],
    ["backend terminated", pgError("57P01"), false, "DB_UNAVAILABLE"],
    ["backend terminated during COMMIT", pgError("57P01"), true, "DB_COMMIT_UNKNOWN"],
    ["server starting", pgError("57P03"), false, "DB_UNAVAILABLE"],
    ["too many connections", pgError("53300"), false, "DB_UNAVAILABLE"],
    ["statement_timeout", pgError("57014"), false, "DB_UNAVAILABLE"],
    ["statement_timeout at COMMIT (answered)", pgError("57014"), true, "DB_UNAVAILABLE"],
    ["connection refused", pgError("ECONNREFUSED"), false, "DB_UNAVAILABLE"],
    ["reset during COMMIT", pgError("ECONNRESET"), true, "DB_COMMIT_UNKNOWN"],
    ["socket closed", new Error("Connection terminated unexpectedly"), false, "DB_UNAVAILABLE"],
    [
      "socket closed during COMMIT",
      new Error("Connection terminated unexpectedly"),
      true,
      "DB_COMMIT_UNKNOWN",
    ],
    [
      "COMMIT refused by the client before sending",
      new Error("Client has encountered a connection error and is not queryable"),
      true,
      "DB_UNAVAILABLE",
    ],
    ["no answer", new Error("Query read timeout"), true, "DB_COMMIT_UNKNOWN"],
    ["pool connect timeout", new Error("timeout exceeded when trying to connect"), false, "DB_UNAVAILABLE"],
    ["unique violation", pgError("23505"), false, "DB_REJECTED"],
    ["syntax error", pgError("42601"), false, "DB_REJECTED"],
    ["aborted transaction", pgError("25P02"), false, "DB_REJECTED"],
    ["anything else", new Error("surprise"), false, "DB_REJECTED"],
  ];
  it.each(cases)("%s", (_, err, commitSent, code) => {
    const e = classifyTxError(err, "ctx", commitSent);
    expect(e.code).toBe(code);
    expect(e.transient).toBe(code !== "DB_REJECTED");
    expect(e.cause).toBe(err);
    expect(e.message).toBe(`ctx: ${err.message}`);
  });

  it("keeps an already classified error as it is", () => {
    const e = classifyTxError(pgError("40001"), "inner");
    expect(classifyTxError(e, "outer", true)).toBe(e);
  });

  it("knows node-postgres's connection messages as the installed version writes them", () => {
    // node-postgres sets no code on these; an upgrade that rewords one must fail here.
    const require = createRequire(import.meta.url);
    const pgLib = dirname(require.resolve("pg"));
    const sources =
      readFileSync(join(pgLib, "client.js"), "utf8") + readFileSync(require.resolve("pg-pool"), "utf8");
    for (const m of PG_CONNECTION_MESSAGES) expect(sources, m).toContain(`'${m}'`);
  });
});
