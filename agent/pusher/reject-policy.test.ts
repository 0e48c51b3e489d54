import { expect, it } from "vitest";
import { rejectAction } from "./reject-policy.ts";

it("classifies rejects by what the sender must do", () => {
  expect(rejectAction(8)).toBe("retry"); // RESOURCE_EXHAUSTED
  expect(rejectAction(3)).toBe("discard"); // INVALID_ARGUMENT
  expect(rejectAction(11)).toBe("discard"); // OUT_OF_RANGE
  expect(rejectAction(13)).toBe("retry_limited"); // INTERNAL
});
