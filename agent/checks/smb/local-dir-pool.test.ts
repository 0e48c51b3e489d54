// The pooled local directories of the SMB check (local-dir.ts, local-dir-pool.ts), against the real file system
// in a temp dir. smbclient's `get` is stood in for by what it does to the read
// file: open with O_TRUNC and write (checked against smbclient itself in
// test/smb/probe.test.ts, whose integrity passes only if the handle sees it).
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalDirPool, removeDeadProcessesDirs } from "./local-dir-pool.ts";

let parent: string;

beforeEach(() => {
  parent = mkdtempSync(join(tmpdir(), "smbfleet-local-files-test-"));
});

afterEach(() => {
  rmSync(parent, { recursive: true, force: true });
});

const pool = (idleTtlMs = 60_000) => new LocalDirPool({ parent, idleTtlMs });

describe("LocalDirPool", () => {
  it("names a directory after this process, 0700, with a 0600 auth file and 0600 put files of fresh random bytes", async () => {
    const p = pool();
    const dir = await p.acquire();
    expect(dir.path).toMatch(new RegExp(`/smbfleet-run-${process.pid}-[A-Za-z0-9]{6}$`));
    expect(statSync(dir.path).mode & 0o777).toBe(0o700);
    await dir.setUsername("probe%user");
    expect(readFileSync(dir.authPath, "utf8")).toBe("username = probe%user\n");
    expect(statSync(dir.authPath).mode & 0o777).toBe(0o600);

    const first = await dir.prepare(3, 1000);
    expect(first).toHaveLength(3);
    const firstBytes = first.map((f) => Buffer.from(f.bytes));
    for (const f of first) {
      expect(readFileSync(f.writePath)).toEqual(f.bytes);
      expect(statSync(f.writePath).mode & 0o777).toBe(0o600);
    }
    expect(firstBytes[0]).not.toEqual(firstBytes[1]);

    const second = await dir.prepare(3, 1000);
    expect(second.map((f) => f.writePath)).toEqual(first.map((f) => f.writePath));
    for (const [i, f] of second.entries()) {
      expect(readFileSync(f.writePath)).toEqual(f.bytes);
      expect(f.bytes).not.toEqual(firstBytes[i]);
    }
    await p.release(dir, false);
    await p.close();
    expect(existsSync(dir.path)).toBe(false);
  });

  it("rewrites the authentication file when the username changes, shorter or longer", async () => {
    const p = pool();
    const dir = await p.acquire();
    await dir.setUsername("a-rather-long-user-name");
    await dir.setUsername("bob");
    expect(readFileSync(dir.authPath, "utf8")).toBe("username = bob\n");
    await expect(dir.setUsername("u\npassword = x")).rejects.toThrow(RangeError);
    expect(readFileSync(dir.authPath, "utf8")).toBe("username = bob\n");
    await p.release(dir, false);
    await p.close();
  });

  it("shrinks and grows the put files with the target's size and count", async () => {
    const p = pool();
    const dir = await p.acquire();
    await dir.prepare(2, 5000);
    const small = await dir.prepare(2, 100);
    for (const f of small) expect(readFileSync(f.writePath)).toEqual(f.bytes);
    const more = await dir.prepare(4, 3000);
    expect(more).toHaveLength(4);
    for (const f of more) expect(readFileSync(f.writePath)).toEqual(f.bytes);
    await p.release(dir, false);
    await p.close();
  });

  it("reads back what a get wrote into the read file, and shows a file that came back longer or shorter", async () => {
    const p = pool();
    const dir = await p.acquire();
    const [f] = await dir.prepare(1, 4096);
    // Before any get, the read file is empty: an integrity check would fail, not pass.
    expect((await dir.readBack(0, 4096)).length).toBe(0);

    writeFileSync(f!.readPath, f!.bytes); // O_WRONLY|O_CREAT|O_TRUNC on the same inode, as smbclient does
    expect((await dir.readBack(0, 4096)).equals(f!.bytes)).toBe(true);

    writeFileSync(f!.readPath, Buffer.concat([f!.bytes, Buffer.from("x")]));
    const longer = await dir.readBack(0, 4096);
    expect(longer.length).toBe(4097);
    expect(longer.equals(f!.bytes)).toBe(false);
    expect(await dir.readSize(0)).toBe(4097);

    writeFileSync(f!.readPath, f!.bytes.subarray(0, 10));
    expect((await dir.readBack(0, 4096)).length).toBe(10);
    await p.release(dir, false);
    await p.close();
    expect(readdirSync(parent)).toEqual([]);
  });

  it("reuses a released directory, removes a damaged one, and after close removes what comes back", async () => {
    const p = pool();
    const a = await p.acquire();
    const b = await p.acquire();
    expect(b.path).not.toBe(a.path);
    await p.release(a, false);
    expect(await p.acquire()).toBe(a);

    await p.release(b, true);
    expect(existsSync(b.path)).toBe(false);

    await p.close();
    expect(existsSync(a.path)).toBe(true); // still in use
    await p.release(a, false);
    expect(existsSync(a.path)).toBe(false);
    expect(readdirSync(parent)).toEqual([]);
  });

  it("removes a directory idle longer than its time to live, without being asked", async () => {
    const p = pool(20);
    const a = await p.acquire();
    await a.prepare(1, 10);
    await p.release(a, false);
    for (let i = 0; i < 100 && existsSync(a.path); i++) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(a.path)).toBe(false);
    const b = await p.acquire();
    expect(b).not.toBe(a);
    await p.release(b, false);
    await p.close();
    expect(readdirSync(parent)).toEqual([]);
  });

  it("removes the directories of processes that are gone, and no one else's", async () => {
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    const dead = join(parent, `smbfleet-run-${gone}-aB3dE9`);
    const living = join(parent, "smbfleet-run-1-aB3dE9"); // pid 1 is always there
    const ours = join(parent, `smbfleet-run-${process.pid}-aB3dE9`);
    const unrelated = join(parent, "smbfleet-run-xyz");
    for (const d of [dead, living, ours, unrelated]) mkdirSync(d);
    writeFileSync(join(dead, "w-0"), "x");
    await removeDeadProcessesDirs(parent);
    expect(readdirSync(parent).sort()).toEqual(
      [living, ours, unrelated].map((d) => d.slice(parent.length + 1)).sort(),
    );
  });

  it("fails with the file system's error when the parent directory does not exist", async () => {
    const p = new LocalDirPool({ parent: join(parent, "missing"), idleTtlMs: 1000 });
    await expect(p.acquire()).rejects.toThrow(/ENOENT/);
  });
});
