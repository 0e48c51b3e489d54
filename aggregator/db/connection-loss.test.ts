import { describe, expect, it } from "vitest";
import { silentLogger } from "../../shared/logger.ts";
import { guardConnectionLoss, isConnectionLoss } from "./connection-loss.ts";

describe("isConnectionLoss", () => {
  it("takes socket, driver and 57P codes, and nothing else", () => {
    for (const code of ["ECONNRESET", "EPIPE", "CONNECTION_CLOSED", "57P01", "57P03"]) {
      expect(isConnectionLoss(Object.assign(new Error("x"), { code }))).toBe(true);
    }
    for (const reason of [
      new Error("bug"),
      Object.assign(new Error("x"), { code: "23505" }),
      null,
      "ECONNRESET",
    ]) {
      expect(isConnectionLoss(reason)).toBe(false);
    }
  });
});

describe("guardConnectionLoss", () => {
  it("keeps the process for a lost connection and throws anything else on", () => {
    let losses = 0;
    const before = process.listenerCount("unhandledRejection");
    const uninstall = guardConnectionLoss(silentLogger(), () => losses++);
    const handler = process.listeners("unhandledRejection").at(-1)!;
    const lost = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    expect(() => handler(lost, Promise.resolve())).not.toThrow();
    expect(losses).toBe(1);
    const bug = new TypeError("a bug");
    expect(() => handler(bug, Promise.resolve())).toThrow(bug);
    uninstall();
    expect(process.listenerCount("unhandledRejection")).toBe(before);
  });
});
