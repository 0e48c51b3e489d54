import { describe, expect, it } from "vitest";
import {
  bitString,
  decodeOid,
  oid,
  readChildren,
  readElement,
  sequence,
  smallInteger,
  time,
  tlv,
  unsignedInteger,
} from "./der.ts";

const hex = (b: Buffer) => b.toString("hex");

describe("DER encoding", () => {
  it("encodes object identifiers (X.690 §8.19) and reads them back", () => {
    expect(hex(oid("1.2.840.10045.4.3.2"))).toBe("06082a8648ce3d040302");
    expect(hex(oid("2.5.29.17"))).toBe("0603551d11");
    for (const dotted of ["1.3.6.1.5.5.7.3.2", "2.999.1", "1.2.840.113549.1.1.11"]) {
      expect(decodeOid(readElement(oid(dotted)).content)).toBe(dotted);
    }
    expect(() => oid("1.x")).toThrow(/bad object identifier/);
    expect(() => oid("3.1")).toThrow(/bad object identifier/);
  });

  it("encodes integers in minimal two's complement", () => {
    expect(hex(smallInteger(0))).toBe("020100");
    expect(hex(smallInteger(2))).toBe("020102");
    expect(hex(smallInteger(128))).toBe("02020080");
    expect(hex(unsignedInteger(Buffer.from([0, 0, 0x7f])))).toBe("02017f");
    expect(hex(unsignedInteger(Buffer.from([0xff, 0x01])))).toBe("020300ff01");
  });

  it("uses long-form lengths from 128 bytes on", () => {
    expect(hex(tlv(0x04, Buffer.alloc(127))).slice(0, 4)).toBe("047f");
    expect(hex(tlv(0x04, Buffer.alloc(128))).slice(0, 6)).toBe("048180");
    expect(hex(tlv(0x04, Buffer.alloc(300))).slice(0, 8)).toBe("0482012c");
    const long = tlv(0x04, Buffer.alloc(300, 7));
    expect(readElement(long).content.length).toBe(300);
  });

  it("switches from UTCTime to GeneralizedTime in 2050 (RFC 5280 §4.1.2.5)", () => {
    expect(time(new Date("2049-12-31T23:59:59Z")).toString("latin1", 2)).toBe("491231235959Z");
    expect(time(new Date("2049-12-31T23:59:59Z"))[0]).toBe(0x17);
    expect(time(new Date("2050-01-01T00:00:00Z")).toString("latin1", 2)).toBe("20500101000000Z");
    expect(time(new Date("2050-01-01T00:00:00Z"))[0]).toBe(0x18);
  });

  it("reads nested elements and refuses truncated input", () => {
    const encoded = sequence(smallInteger(5), bitString(Buffer.from([0x80]), 7));
    const children = readChildren(readElement(encoded).content);
    expect(children.map((c) => c.tag)).toEqual([0x02, 0x03]);
    expect(hex(children[1]?.content ?? Buffer.alloc(0))).toBe("0780");
    expect(() => readElement(encoded.subarray(0, encoded.length - 1))).toThrow(/past the end/);
    expect(() => readElement(Buffer.from([0x30]))).toThrow(/truncated/);
    expect(() => readElement(Buffer.from([0x30, 0x80]))).toThrow(/unsupported length/);
  });
});
