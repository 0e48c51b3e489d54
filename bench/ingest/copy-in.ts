// COPY ... FROM STDIN through postgres.js, made safe on the error path.
// postgres.js 3.4 never settles the writable when PostgreSQL rejects the COPY
// after CopyDone was sent (porsager/postgres#1173): awaiting it would hang the
// batch, and inside sql.begin() the transaction would never roll back. So once
// CopyDone is out, a trivial query follows on the same connection: it
// completes after the COPY did, or fails (25P02, or the connection's error)
// when the COPY failed, and either way the caller gets an answer.
import { SmbfleetError } from "../../shared/errors.ts";
import type { Tx } from "../../aggregator/db/connect.ts";

type FinalHook = { _final: (callback: (err?: Error | null) => void) => void };

export async function copyIn(tx: Tx, statement: string, text: string): Promise<void> {
  const writable = await tx.unsafe(statement).writable();
  const copyDoneSent = new Promise<void>((resolve) => {
    const hooked = writable as unknown as FinalHook;
    const final = hooked._final.bind(writable);
    hooked._final = (callback) => {
      final(callback); // writes CopyDone; postgres.js calls back on CommandComplete
      resolve();
    };
  });
  const completed = new Promise<void>((resolve, reject) => {
    // A failure while data is still being sent destroys the stream with the real error.
    writable.once("error", reject);
    writable.end(text, () => resolve());
  });
  await Promise.race([copyDoneSent, completed]);
  try {
    await Promise.all([completed, tx`SELECT 1`]);
  } catch (err) {
    if ((err as { code?: unknown }).code === "25P02") {
      throw new SmbfleetError(
        "DB_UNAVAILABLE",
        `${statement.split("(")[0]!.trim()} failed (PostgreSQL's reason is in its log; postgres.js does not report it)`,
        { cause: err },
      );
    }
    throw err;
  }
}
