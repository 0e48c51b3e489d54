import { expect, it } from "vitest";
import { SendWindow } from "./window.ts";

it("tracks what is in flight, is full at its size, and moves the cursor", () => {
  const w = new SendWindow(2, 10);
  w.sent(11, 20, 0);
  expect(w.full()).toBe(false);
  w.sent(21, 30, 1);
  expect(w.full()).toBe(true);
  expect(w.cursor).toBe(30);
  w.acked(20);
  expect([w.count, w.oldest()?.first]).toEqual([1, 21]);
  w.acked(5); // an old ack changes nothing
  expect([w.count, w.cursor]).toEqual([1, 30]);
});

it("a rewind resends from the refused batch and ignores exactly the refusals of the batches behind it", () => {
  const w = new SendWindow(8, 0);
  for (const first of [1, 11, 21, 31]) w.sent(first, first + 9, 0);
  w.rewind(11, 500);
  expect([w.cursor, w.count, w.resumeAt]).toEqual([10, 1, 500]);
  w.sent(11, 20, 600); // resent
  w.sent(21, 30, 600);
  expect(w.takeStale(21)).toBe(true); // the old 21's refusal
  expect(w.takeStale(21)).toBe(false); // a refusal now would be for the resent 21
  expect(w.takeStale(31)).toBe(true);
  expect(w.takeStale(11)).toBe(false); // the refused batch itself is not stale
});

it("refused ranges leave the window when they cover a batch, and are dropped once acked past", () => {
  const w = new SendWindow(8, 0);
  w.sent(1, 10, 0);
  w.sent(11, 20, 0);
  w.refuse(11, 20);
  w.refuse(3, 4); // part of a batch: it stays in flight, its ack is still due
  expect(w.count).toBe(1);
  w.acked(10);
  expect(w.takeRefused()).toEqual([{ first: 11, last: 20 }]);
  expect(w.takeRefused()).toEqual([]);
});
