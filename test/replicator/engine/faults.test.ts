import { expect } from "chai";
import kafkajs from "kafkajs";
import { KafkaError } from "../../../kafka/errors.js";
import { ReplicatorError } from "../../../replicator/errors.js";
import {
  bisect,
  classifyFailure,
  PartialDelivery,
  RefusedRecord,
  retryDelayMs,
} from "../../../replicator/engine/faults.js";

const protocolError = (type: string, code: number, retriable = false) =>
  new kafkajs.KafkaJSProtocolError({ message: type, type, code, retriable } as never);

describe("engine faults: classification, backoff, bisection (pure)", () => {
  it("a record-level Kafka error (also as a cause) is the record's; encoding errors too; the rest is retried", () => {
    expect(classifyFailure(protocolError("MESSAGE_TOO_LARGE", 10))).to.deep.equal({
      kind: "record",
      reason: "MESSAGE_TOO_LARGE",
    });
    const wrapped = new KafkaError("RECORDS_REFUSED", "t[0] refused", {
      cause: protocolError("INVALID_RECORD", 87),
    });
    expect(classifyFailure(wrapped)).to.deep.equal({ kind: "record", reason: "INVALID_RECORD" });
    expect(classifyFailure(new TypeError("Cannot read properties of null"))).to.deep.equal({
      kind: "record",
      reason: "ENCODING",
    });
    expect(classifyFailure(protocolError("NOT_LEADER_FOR_PARTITION", 6, true))).to.deep.equal({
      kind: "retry",
      reason: "NOT_LEADER_FOR_PARTITION",
    });
    expect(classifyFailure(new KafkaError("NOT_ACKNOWLEDGED", "x")).kind).to.equal("retry");
    expect(classifyFailure(new Error("boom"))).to.deep.equal({ kind: "retry", reason: "Error" });
  });

  it("a transaction whose outcome is unknown is retried, never bisected, whatever its cause says", () => {
    const unknown = new ReplicatorError("TRANSACTION_OUTCOME_UNKNOWN", "not confirmed", {
      cause: new TypeError("Cannot read properties of undefined (reading 'resolve')"),
    });
    expect(classifyFailure(unknown)).to.deep.equal({ kind: "retry", reason: "TRANSACTION_OUTCOME_UNKNOWN" });
  });

  it("retryDelayMs doubles from 500 ms to 30 s, jittered to 50–100 %", () => {
    expect(retryDelayMs(0, () => 0)).to.equal(250);
    expect(retryDelayMs(0, () => 1)).to.equal(500);
    expect(retryDelayMs(3, () => 1)).to.equal(4000);
    expect(retryDelayMs(20, () => 1)).to.equal(30_000);
    expect(retryDelayMs(20, () => 0)).to.equal(15_000);
  });

  it("bisect finds the refused unit in O(log n) sends; every unit before it is delivered exactly once", async () => {
    const units = Array.from({ length: 16 }, (_, i) => i);
    const delivered: number[] = [];
    let sends = 0;
    const err = await bisect(units, async (group) => {
      sends++;
      if (group.includes(11)) throw protocolError("MESSAGE_TOO_LARGE", 10);
      delivered.push(...group);
    }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(RefusedRecord);
    expect((err as RefusedRecord<number>).unit).to.equal(11);
    expect((err as RefusedRecord<number>).delivered).to.equal(11);
    expect(delivered).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(sends).to.be.at.most(10);
  });

  it("bisect resolves with the count when all goes through; a retriable error stops it with what was delivered", async () => {
    expect(await bisect([1, 2, 3], async () => undefined)).to.equal(3);
    let first = true;
    const err = await bisect([1, 2, 3, 4], async (group) => {
      if (first) {
        first = false;
        throw protocolError("MESSAGE_TOO_LARGE", 10);
      }
      if (group.includes(3)) throw protocolError("REQUEST_TIMED_OUT", 7, true);
    }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(PartialDelivery);
    expect((err as PartialDelivery).delivered).to.equal(2);
  });

  it("bisect counts a send's partial delivery (a record in several requests) and goes on after it", async () => {
    const seen: number[][] = [];
    const err = await bisect([1, 2, 3], async (group) => {
      seen.push([...group]);
      if (group.length === 3) throw new PartialDelivery(1, protocolError("MESSAGE_TOO_LARGE", 10));
      if (group.includes(3)) throw protocolError("MESSAGE_TOO_LARGE", 10);
    }).catch((e: unknown) => e);
    // 1 went through in the first send: never sent again
    expect(seen).to.deep.equal([[1, 2, 3], [2], [3]]);
    expect((err as RefusedRecord<number>).unit).to.equal(3);
    expect((err as RefusedRecord<number>).delivered).to.equal(2);
  });
});
