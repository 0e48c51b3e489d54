// The revocation list the aggregator enforces ([tls] revoked), kept current:
// the file is polled (stat every 2 s; fs.watch misses a file replaced by
// rename on some file systems and never fires on NFS) and re-read when its
// size, mtime or inode changes. A list that fails to parse at start stops the
// aggregator with the file named; one that fails later is logged and the
// previous list stays in force, so a half-copied file never un-revokes anyone.
// A missing file revokes nothing (a fleet that never revoked has none).
import { stat } from "node:fs/promises";
import { errorMessage } from "../../../shared/errors.ts";
import type { Logger } from "../../../shared/logger.ts";
import { readRevocationList, type RevocationList } from "../../../shared/tls/revocation.ts";

/** "Within seconds" for an operator who just ran `pki revoke`; a stat every 2 s costs nothing. */
export const REVOCATION_POLL_MS = 2_000;

export interface RevocationSource {
  current(): RevocationList;
  /** Calls `listener` with each new list; returns a function that stops it. */
  onChange(listener: (list: RevocationList) => void): () => void;
}

export class RevocationWatch implements RevocationSource {
  readonly file: string;
  readonly #logger: Logger;
  #list: RevocationList;
  #version: string;
  #timer: NodeJS.Timeout | null = null;
  #polling: Promise<void> | null = null;
  readonly #listeners = new Set<(list: RevocationList) => void>();

  private constructor(file: string, logger: Logger, list: RevocationList, version: string) {
    this.file = file;
    this.#logger = logger;
    this.#list = list;
    this.#version = version;
  }

  /** Reads the list once (throws REVOCATION_INVALID naming the file) and polls it every `intervalMs`. */
  static async start(
    file: string,
    logger: Logger,
    intervalMs = REVOCATION_POLL_MS,
  ): Promise<RevocationWatch> {
    const version = await fileVersion(file);
    const { list, exists } = await readRevocationList(file);
    const watch = new RevocationWatch(file, logger, list, version);
    logger.info(
      { revocationList: file, revoked: list.size },
      exists ? "revocation list loaded" : "no revocation list yet: nothing is revoked",
    );
    watch.#timer = setInterval(() => {
      watch.#polling ??= watch.#poll().finally(() => (watch.#polling = null));
    }, intervalMs).unref();
    return watch;
  }

  current(): RevocationList {
    return this.#list;
  }

  onChange(listener: (list: RevocationList) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#polling;
  }

  async #poll(): Promise<void> {
    const version = await fileVersion(this.file);
    if (version === this.#version) return;
    let next;
    try {
      next = await readRevocationList(this.file);
    } catch (err) {
      // Keep the list in force; try again when the file changes again.
      this.#version = version;
      this.#logger.error({ revocationList: this.file, err: errorMessage(err) }, errorMessage(err));
      return;
    }
    this.#version = version;
    this.#list = next.list;
    this.#logger.info(
      { revocationList: this.file, revoked: next.list.size },
      next.exists ? "revocation list reloaded" : "revocation list removed: nothing is revoked",
    );
    for (const listener of this.#listeners) listener(next.list);
  }
}

/** What changes when the file is rewritten, replaced by rename, or removed. */
async function fileVersion(file: string): Promise<string> {
  try {
    const s = await stat(file, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "absent" : `error:${code}`;
  }
}
