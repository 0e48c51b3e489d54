import { expect, it } from "vitest";
import { Wakeup } from "./wakeup.ts";

it("a notify before wait is not lost", async () => {
  const w = new Wakeup();
  w.notify();
  let woke = false;
  await w.wait(10_000).then(() => (woke = true));
  expect(woke).toBe(true);
});

it("wait resolves on notify, or on its timeout", async () => {
  const w = new Wakeup();
  const order: string[] = [];
  const p = w.wait().then(() => order.push("woken"));
  order.push("waiting");
  w.notify();
  await p;
  expect(order).toEqual(["waiting", "woken"]);
  const t0 = Date.now();
  await w.wait(20);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
});
