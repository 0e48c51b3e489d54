import { describe, expect, it } from "vitest";
import { CopyWriter, copyText, isoTime } from "./copy-rows.ts";

describe("isoTime", () => {
  it("is toISOString for any time from 1970 to the year 9999, across day boundaries", () => {
    const last = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    const samples = [
      1,
      999,
      1000,
      86_399_999,
      86_400_000,
      Date.UTC(2026, 10, 22),
      Date.UTC(2024, 1, 29, 23, 59, 59, 999),
      last,
    ];
    let x = 12345;
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      samples.push(1 + Math.floor((x / 2 ** 31) * last));
      samples.push(Date.UTC(2026, 0, 1) + (x % 400) * 86_400_000 + (x % 86_400_000));
    }
    for (const ms of samples) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});

describe("COPY text", () => {
  it("escapes backslash, newline, carriage return and tab", () => {
    expect(copyText("a\\b\nc\rd\te ü")).toBe("a\\\\b\\nc\\rd\\te ü");
    expect(copyText(null)).toBe("\\N");
  });

  it("grows its buffer and keeps what it holds", () => {
    const w = new CopyWriter();
    const chunk = "0123456789".repeat(1000);
    for (let i = 0; i < 20; i++) w.ascii(chunk);
    w.text("–ü");
    expect(w.length).toBe(200_000 + Buffer.byteLength("–ü"));
    expect(w.buffer.toString("utf8", 0, w.length)).toBe(chunk.repeat(20) + "–ü");
  });
});
