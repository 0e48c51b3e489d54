// Writes a key and its certificate so that a crash or a refusal never leaves
// a half-written or replaced key behind: each file is written in full to a
// temporary name with its final mode, flushed, and only then given its real
// name. Without `force`, the real name is taken with link(2), which fails if
// the name exists, so an existing CA key can never be overwritten by a race
// (test: shared/tls/pki.test.ts "refuses to overwrite").
import { randomBytes } from "node:crypto";
import { link, open, rename, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { SmbfleetError, errorMessage } from "../errors.ts";

export interface FileToWrite {
  path: string;
  content: string;
  /** 0o600 for private keys, 0o644 for certificates. */
  mode: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

async function writeTemporary(file: FileToWrite): Promise<string> {
  const temporary = `${file.path}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(temporary, "wx", file.mode);
  try {
    // open()'s mode is filtered by the umask; chmod makes it exact either way.
    await handle.chmod(file.mode);
    await handle.writeFile(file.content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temporary;
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes every file or none. Throws PKI_EXISTS (and writes nothing) when any
 * target exists and `force` is false.
 */
export async function writeFilesAtomically(files: readonly FileToWrite[], force: boolean): Promise<void> {
  if (!force) {
    for (const file of files) {
      if (await exists(file.path)) {
        throw new SmbfleetError("PKI_EXISTS", `${file.path} already exists; use --force to replace it`);
      }
    }
  }
  const temporaries: string[] = [];
  const linked: string[] = [];
  try {
    for (const file of files) temporaries.push(await writeTemporary(file));
    for (const [i, file] of files.entries()) {
      const temporary = temporaries[i] as string;
      if (force) {
        await rename(temporary, file.path);
      } else {
        await link(temporary, file.path);
        linked.push(file.path);
      }
    }
  } catch (err) {
    // Undo only what this call created: another writer's file stays.
    await Promise.all(linked.map((path) => rm(path, { force: true })));
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new SmbfleetError("PKI_EXISTS", `${errorMessage(err)}; use --force to replace it`, {
        cause: err,
      });
    }
    throw new SmbfleetError(
      "PKI_FAILED",
      `writing ${files.map((f) => f.path).join(", ")}: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  } finally {
    await Promise.all(temporaries.map((path) => rm(path, { force: true })));
  }
  for (const dir of new Set(files.map((f) => dirname(f.path)))) await syncDirectory(dir);
}
