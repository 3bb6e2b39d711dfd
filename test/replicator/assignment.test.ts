/**
 * The partition splits by engine index (replicator/assignment.ts), exactly-once and at-least-once: pure logic, no Kafka.
 */
import { expect } from "chai";
import kafkajs from "kafkajs";
import {
  decodeSlot,
  encodeSlot,
  ownsAnyPartition,
  ownsPartition,
  preferredAssignment,
  staticAssignment,
  type StaticMember,
} from "../../replicator/assignment.js";

const { AssignerProtocol } = kafkajs;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const member = (memberId: string, index: number, count: number): StaticMember => ({
  memberId,
  slot: { index, count },
});

describe("replicator static partition split (exactly-once engines)", () => {
  it("gives partition p to the engine with index p mod n", () => {
    const result = staticAssignment(
      [member("m-b", 1, 3), member("m-c", 2, 3), member("m-a", 0, 3)],
      [{ topic: "t", partitions: range(8) }],
    );
    expect(result.count).to.equal(3);
    expect(result.assignment.get("m-a")).to.deep.equal({ t: [0, 3, 6] });
    expect(result.assignment.get("m-b")).to.deep.equal({ t: [1, 4, 7] });
    expect(result.assignment.get("m-c")).to.deep.equal({ t: [2, 5] });
    expect(result.unassigned).to.deep.equal([]);
    expect(result.idle).to.deep.equal([]);
    for (const p of range(8)) expect(ownsPartition({ index: p % 3, count: 3 }, p)).to.equal(true);
    expect(ownsPartition({ index: 0, count: 3 }, 4)).to.equal(false);
  });

  it("says whether an engine owns any partition of a topic (fewer partitions than engines: idle)", () => {
    for (const partitions of range(6))
      for (const index of range(3)) {
        const slot = { index, count: 3 };
        const owned = range(partitions).some((p) => ownsPartition(slot, p));
        expect(ownsAnyPartition(slot, partitions), `engine ${index}, ${partitions} partitions`).to.equal(
          owned,
        );
      }
    expect(ownsAnyPartition({ index: 1, count: 2 }, 1)).to.equal(false);
    expect(ownsAnyPartition({ index: 0, count: 2 }, 1)).to.equal(true);
  });

  it("leaves the partitions of a missing engine unassigned instead of moving them", () => {
    const result = staticAssignment([member("m-0", 0, 2)], [{ topic: "t", partitions: range(6) }]);
    expect(result.assignment.get("m-0")).to.deep.equal({ t: [0, 2, 4] });
    expect(result.unassigned).to.deep.equal([{ topic: "t", partitions: [1, 3, 5] }]);
    const none = staticAssignment([member("m-1", 1, 2)], [{ topic: "t", partitions: [0] }]);
    expect(none.assignment.get("m-1")).to.deep.equal({});
    expect(none.unassigned).to.deep.equal([{ topic: "t", partitions: [0] }]);
  });

  it("gives a duplicated index to the smallest memberId only; the other stays idle", () => {
    const members = [member("z-dup", 0, 2), member("a-dup", 0, 2), member("m-1", 1, 2)];
    for (const order of [members, [...members].reverse()]) {
      const result = staticAssignment(order, [{ topic: "t", partitions: range(4) }]);
      expect(result.assignment.get("a-dup")).to.deep.equal({ t: [0, 2] });
      expect(result.assignment.get("z-dup")).to.deep.equal({});
      expect(result.assignment.get("m-1")).to.deep.equal({ t: [1, 3] });
      expect(result.idle).to.deep.equal([{ memberId: "z-dup", reason: "engine index 0 already owned" }]);
    }
  });

  it("more engines than partitions: the extra engines get nothing, nothing is unassigned", () => {
    const result = staticAssignment(
      range(4).map((k) => member(`m-${k}`, k, 4)),
      [{ topic: "t", partitions: [0, 1] }],
    );
    expect(result.assignment.get("m-0")).to.deep.equal({ t: [0] });
    expect(result.assignment.get("m-1")).to.deep.equal({ t: [1] });
    expect(result.assignment.get("m-2")).to.deep.equal({});
    expect(result.assignment.get("m-3")).to.deep.equal({});
    expect(result.unassigned).to.deep.equal([]);
    expect(result.idle).to.deep.equal([]);
  });

  it("splits every topic the same way", () => {
    const result = staticAssignment(
      [member("m-0", 0, 2), member("m-1", 1, 2)],
      [
        { topic: "a", partitions: [2, 0, 1] },
        { topic: "b", partitions: [0] },
        { topic: "c", partitions: range(5) },
      ],
    );
    expect(result.assignment.get("m-0")).to.deep.equal({ a: [0, 2], b: [0], c: [0, 2, 4] });
    expect(result.assignment.get("m-1")).to.deep.equal({ a: [1], c: [1, 3] });
  });

  it("members without a slot or with another engine count get nothing", () => {
    const result = staticAssignment(
      [member("b-0", 0, 2), { memberId: "c-none" }, member("a-1", 1, 2), member("d-3", 0, 3)],
      [{ topic: "t", partitions: range(4) }],
    );
    // The count comes from the smallest memberId with a slot ("a-1": 2 engines).
    expect(result.count).to.equal(2);
    expect(result.assignment.get("b-0")).to.deep.equal({ t: [0, 2] });
    expect(result.assignment.get("a-1")).to.deep.equal({ t: [1, 3] });
    expect(result.assignment.get("c-none")).to.deep.equal({});
    expect(result.assignment.get("d-3")).to.deep.equal({});
    expect(result.idle.map((i) => i.memberId).sort()).to.deep.equal(["c-none", "d-3"]);
    const nobody = staticAssignment([{ memberId: "x" }], [{ topic: "t", partitions: [0, 1] }]);
    expect(nobody.unassigned).to.deep.equal([{ topic: "t", partitions: [0, 1] }]);
  });

  it("carries the slot in kafkajs member metadata and rejects what it does not understand", () => {
    const buffer = AssignerProtocol.MemberMetadata.encode({
      version: 0,
      topics: ["t"],
      userData: encodeSlot({ index: 2, count: 3 }),
    });
    const decoded = AssignerProtocol.MemberMetadata.decode(buffer);
    expect(decoded?.topics).to.deep.equal(["t"]);
    expect(decodeSlot(decoded?.userData)).to.deep.equal({ index: 2, count: 3 });
    expect(decodeSlot(Buffer.alloc(0))).to.equal(undefined);
    expect(decodeSlot(Buffer.from("not json"))).to.equal(undefined);
    expect(decodeSlot(Buffer.from(JSON.stringify({ v: 1, index: 3, count: 3 })))).to.equal(undefined);
    expect(decodeSlot(Buffer.from(JSON.stringify({ v: 2, index: 0, count: 1 })))).to.equal(undefined);
  });
});

describe("replicator preferred partition split (at-least-once engines)", () => {
  it("gives partition p to the engine with index p mod n, leaving a starting engine's partitions unassigned", () => {
    const both = preferredAssignment(
      [member("m-1", 1, 2), member("m-0", 0, 2)],
      [{ topic: "t", partitions: range(6) }],
    );
    expect(both.assignment.get("m-0")).to.deep.equal({ t: [0, 2, 4] });
    expect(both.assignment.get("m-1")).to.deep.equal({ t: [1, 3, 5] });
    expect(both.unassigned).to.deep.equal([]);
    // Engine 1 not joined yet: its partitions wait for it instead of going to engine 0 and coming back.
    const first = preferredAssignment([member("m-0", 0, 2)], [{ topic: "t", partitions: range(6) }]);
    expect(first.assignment.get("m-0")).to.deep.equal({ t: [0, 2, 4] });
    expect(first.unassigned).to.deep.equal([{ topic: "t", partitions: [1, 3, 5] }]);
  });

  it("shares each index's partitions between processes with the same id, whatever their engine counts", () => {
    const two = preferredAssignment(
      [member("a-0", 0, 2), member("a-1", 1, 2), member("b-0", 0, 2), member("b-1", 1, 2)],
      [{ topic: "t", partitions: range(8) }],
    );
    expect(two.assignment.get("a-0")).to.deep.equal({ t: [0, 4] });
    expect(two.assignment.get("b-0")).to.deep.equal({ t: [2, 6] });
    expect(two.assignment.get("a-1")).to.deep.equal({ t: [1, 5] });
    expect(two.assignment.get("b-1")).to.deep.equal({ t: [3, 7] });
    // Process a (2 engines) with process b (1 engine): b owns every partition by its own slot and shares.
    const mixed = preferredAssignment(
      [member("a-0", 0, 2), member("a-1", 1, 2), member("b-0", 0, 1)],
      [
        { topic: "t", partitions: range(6) },
        { topic: "u", partitions: range(2) },
      ],
    );
    const owned = [...mixed.assignment.values()].flatMap((a) =>
      Object.entries(a).flatMap(([t, ps]) => ps.map((p) => `${t}${p}`)),
    );
    expect(owned.sort()).to.deep.equal(["t0", "t1", "t2", "t3", "t4", "t5", "u0", "u1"]);
    for (const [memberId, a] of mixed.assignment) {
      const slot = memberId === "b-0" ? { index: 0, count: 1 } : { index: Number(memberId.at(-1)), count: 2 };
      for (const ps of Object.values(a)) for (const p of ps) expect(ownsPartition(slot, p)).to.equal(true);
      const n = Object.values(a).flat().length;
      expect(n, `${memberId} load`).to.be.within(2, 3);
    }
    expect(mixed.unassigned).to.deep.equal([]);
  });

  it("a process that died: the other process's engines of the same index take its partitions over", () => {
    const after = preferredAssignment(
      [member("b-0", 0, 2), member("b-1", 1, 2)],
      [{ topic: "t", partitions: range(4) }],
    );
    expect(after.assignment.get("b-0")).to.deep.equal({ t: [0, 2] });
    expect(after.assignment.get("b-1")).to.deep.equal({ t: [1, 3] });
    const none = preferredAssignment([{ memberId: "x" }], [{ topic: "t", partitions: [0] }]);
    expect(none.idle).to.deep.equal([{ memberId: "x", reason: "no engine index in its metadata" }]);
    expect(none.unassigned).to.deep.equal([{ topic: "t", partitions: [0] }]);
  });
});
