// The local side of a probe run: a private 0700 directory holding the
// authentication file, the files smbclient puts (w-<i>) and the files it gets
// back (r-<i>).
//
// Directories are pooled (local-dir-pool.ts) and reused run after run, with
// their files kept open. Creating, reading and deleting ~12 files per run cost the agent
// more CPU than everything else it does per run together: on ext4, allocating
// an inode right after deleting others scans for recently deleted ones
// (find_inode_bit → recently_deleted in a profile), and each fs/promises call
// is several thread-pool round trips (open, fstat, read, close). Now a run
// writes fresh random bytes into open handles (one write each) and reads back
// through open handles (one read each); smbclient's `get` truncates and
// rewrites the same inode (open with O_TRUNC), so the handle sees what it wrote.
//
// The bytes are fresh for every run, so a stale r-<i> (a get that wrote
// nothing, a file replaced under us) fails integrity instead of passing it.
// A directory that saw any local trouble is discarded, never reused, so a
// damaged one costs at most the run that found it.
import { randomFillSync } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { authFileText } from "./invocation.ts";

/** Write file i: what smbclient puts, and the bytes the read-back must equal. */
export interface LocalFile {
  writePath: string;
  readPath: string;
  bytes: Buffer;
}

interface Slot {
  handle: FileHandle;
  /** Bytes in the file now, so a run of another size truncates it. */
  size: number;
}

/** One run's directory. Used by one run at a time; give it back with LocalDirPool.release. */
export class LocalDir {
  readonly path: string;
  readonly authPath: string;
  #auth: FileHandle | null = null;
  #username: string | null = null;
  readonly #writes: Slot[] = [];
  readonly #reads: FileHandle[] = [];
  /** This run's bytes, one buffer per file, reused (refilled) run after run. */
  readonly #payloads: Buffer[] = [];
  /** Read-back bytes land here; one byte longer than the files, to see a file that came back too long. */
  #scratch = Buffer.alloc(0);
  idleSince = 0;

  constructor(path: string) {
    this.path = path;
    this.authPath = join(path, "auth");
  }

  /** The authentication file names the username; rewritten only when it changes. */
  async setUsername(username: string): Promise<void> {
    if (this.#username === username) return;
    const text = Buffer.from(authFileText(username));
    this.#auth ??= await open(this.authPath, "wx", 0o600);
    await writeAll(this.#auth, text);
    await this.#auth.truncate(text.length);
    this.#username = username;
  }

  /**
   * Fills `count` write files with fresh random bytes of `size` each: random so
   * that a server (or a cache on the way) cannot pass integrity by returning
   * stale or zeroed bytes.
   */
  async prepare(count: number, size: number): Promise<LocalFile[]> {
    const files: LocalFile[] = [];
    for (let i = 0; i < count; i++) {
      const slot = this.#writes[i] ?? (await this.#addFile(i));
      let bytes = this.#payloads[i];
      if (bytes?.length !== size) {
        bytes = Buffer.allocUnsafe(size);
        this.#payloads[i] = bytes;
      }
      randomFillSync(bytes);
      await writeAll(slot.handle, bytes);
      if (slot.size > size) await slot.handle.truncate(size);
      slot.size = size;
      files.push({ writePath: this.#writePath(i), readPath: this.#readPath(i), bytes });
    }
    return files;
  }

  /**
   * What smbclient got into read file i, read up to one byte more than
   * `expectedSize` (so a longer file shows). The buffer is valid until the next readBack.
   */
  async readBack(i: number, expectedSize: number): Promise<Buffer> {
    const handle = this.#reads[i];
    if (handle === undefined) throw new RangeError(`readBack: no read file ${i}`);
    if (this.#scratch.length < expectedSize + 1) this.#scratch = Buffer.allocUnsafe(expectedSize + 1);
    const into = this.#scratch.subarray(0, expectedSize + 1);
    let filled = 0;
    while (filled < into.length) {
      const { bytesRead } = await handle.read(into, filled, into.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return into.subarray(0, filled);
  }

  /** The read file's length, for a failure message. */
  async readSize(i: number): Promise<number> {
    const handle = this.#reads[i];
    return handle === undefined ? 0 : (await handle.stat()).size;
  }

  async close(): Promise<void> {
    const handles = [...this.#writes.map((s) => s.handle), ...this.#reads];
    if (this.#auth !== null) handles.push(this.#auth);
    this.#auth = null;
    this.#writes.length = 0;
    this.#reads.length = 0;
    await Promise.all(handles.map((h) => h.close().catch(() => {})));
  }

  async #addFile(i: number): Promise<Slot> {
    // Files are added in order, so i is always the next index.
    const write = await open(this.#writePath(i), "wx+", 0o600);
    const slot: Slot = { handle: write, size: 0 };
    this.#writes.push(slot);
    // smbclient's get writes this path; created here so that a handle can follow its inode.
    this.#reads.push(await open(this.#readPath(i), "wx+", 0o600));
    return slot;
  }

  #writePath(i: number): string {
    return join(this.path, `w-${i}`);
  }

  #readPath(i: number): string {
    return join(this.path, `r-${i}`);
  }
}

async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, done);
    done += bytesWritten;
  }
}
