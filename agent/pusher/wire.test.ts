import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AgentMessageSchema, ResultSchema } from "../../shared/gen/smbfleet/v1/ingest_pb.js";
import { resultToWire } from "../../shared/wire/result-codec.ts";
import { sampleResult } from "../buffer/testdata/sample-result.ts";
import { encodeBatchMessage, heartbeatMessage, serializeOutbound } from "./wire.ts";

describe("encodeBatchMessage", () => {
  const bodies = [0, 1, 2].map((i) => toBinary(ResultSchema, resultToWire(sampleResult(i))));

  it.each([1, 127, 128, 300, 2 ** 31 + 5, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER - 10])(
    "decodes as AgentMessage{batch} with first_seq %d and the results unchanged",
    (firstSeq) => {
      const msg = fromBinary(AgentMessageSchema, encodeBatchMessage(firstSeq, bodies));
      expect(msg.kind.case).toBe("batch");
      if (msg.kind.case !== "batch") return;
      expect(msg.kind.value.firstSeq).toBe(BigInt(firstSeq));
      expect(msg.kind.value.results.map((r) => toBinary(ResultSchema, r))).toEqual(bodies);
      expect(msg.kind.value.results[2]?.target?.share).toBe("share2");
    },
  );

  it("handles a result longer than 127 bytes and an empty batch", () => {
    expect(bodies[0]!.length).toBeGreaterThan(127);
    const empty = fromBinary(AgentMessageSchema, encodeBatchMessage(9, []));
    expect(empty.kind.case === "batch" && empty.kind.value.results.length).toBe(0);
  });
});

describe("serializeOutbound", () => {
  it("passes pre-encoded bytes through and encodes messages", () => {
    const pre = encodeBatchMessage(5, []);
    expect(serializeOutbound(pre).equals(Buffer.from(pre))).toBe(true);
    const hb = fromBinary(AgentMessageSchema, serializeOutbound(heartbeatMessage(1234, 7, 2)));
    expect(hb.kind.case === "heartbeat" && [hb.kind.value.backlog, hb.kind.value.dropped]).toEqual([7n, 2n]);
  });
});
