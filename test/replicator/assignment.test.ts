/**
 * The partition splits by engine index (replicator/assignment.ts), exactly-once and at-least-once: pure logic, no Kafka.
 */
import { expect } from "chai";
import kafkajs from "kafkajs";
import {
  decodeSlot,
  electLeader,
  encodeSlot,
  ownerIndex,
  ownsPartition,
  preferredAssignment,
  staticAssignment,
  stickyLeaderAssigner,
  type StaticMember,
} from "../../replicator/assignment.js";

const { AssignerProtocol } = kafkajs;
/** A topic whose name hashes to 0 mod 6: its partition p belongs to engine p mod n for n = 1, 2, 3 (ownerIndex). */
const T = "t3";
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const member = (memberId: string, index: number, count: number): StaticMember => ({
  memberId,
  slot: { index, count },
});

describe("replicator static partition split (exactly-once engines)", () => {
  it("gives partition p to the engine with index p mod n", () => {
    const result = staticAssignment(
      [member("m-b", 1, 3), member("m-c", 2, 3), member("m-a", 0, 3)],
      [{ topic: T, partitions: range(8) }],
    );
    expect(result.count).to.equal(3);
    expect(result.assignment.get("m-a")).to.deep.equal({ [T]: [0, 3, 6] });
    expect(result.assignment.get("m-b")).to.deep.equal({ [T]: [1, 4, 7] });
    expect(result.assignment.get("m-c")).to.deep.equal({ [T]: [2, 5] });
    expect(result.unassigned).to.deep.equal([]);
    expect(result.idle).to.deep.equal([]);
    for (const p of range(8)) expect(ownsPartition({ index: p % 3, count: 3 }, T, p)).to.equal(true);
    expect(ownsPartition({ index: 0, count: 3 }, T, 4)).to.equal(false);
  });

  it("offsets each topic by a hash of its name: topics of one partition spread over every engine", () => {
    const topics = range(300).map((i) => `app-${i}`);
    for (const count of [2, 3, 4]) {
      const perEngine = range(count).map(() => 0);
      for (const topic of topics) perEngine[ownerIndex(topic, 0, count)]!++;
      for (const n of perEngine)
        expect(n, `${count} engines: ${perEngine.join()}`).to.be.within(50, 300 / count + 40);
      // A topic's partitions still go to consecutive engines, and the index is the same on every call.
      for (const topic of topics.slice(0, 10))
        for (const p of range(6))
          expect(ownerIndex(topic, p, count)).to.equal((ownerIndex(topic, 0, count) + p) % count);
    }
    const split = staticAssignment(
      [member("m-0", 0, 2), member("m-1", 1, 2)],
      topics.slice(0, 100).map((topic) => ({ topic, partitions: [0] })),
    );
    const sizes = [...split.assignment.values()].map((a) => Object.keys(a).length);
    expect(sizes.reduce((a, b) => a + b)).to.equal(100);
    for (const n of sizes) expect(n).to.be.within(35, 65);
  });

  it("leaves the partitions of a missing engine unassigned instead of moving them", () => {
    const result = staticAssignment([member("m-0", 0, 2)], [{ topic: T, partitions: range(6) }]);
    expect(result.assignment.get("m-0")).to.deep.equal({ [T]: [0, 2, 4] });
    expect(result.unassigned).to.deep.equal([{ topic: T, partitions: [1, 3, 5] }]);
    const none = staticAssignment([member("m-1", 1, 2)], [{ topic: T, partitions: [0] }]);
    expect(none.assignment.get("m-1")).to.deep.equal({});
    expect(none.unassigned).to.deep.equal([{ topic: T, partitions: [0] }]);
  });

  it("gives a duplicated index to the smallest memberId only; the other stays idle", () => {
    const members = [member("z-dup", 0, 2), member("a-dup", 0, 2), member("m-1", 1, 2)];
    for (const order of [members, [...members].reverse()]) {
      const result = staticAssignment(order, [{ topic: T, partitions: range(4) }]);
      expect(result.assignment.get("a-dup")).to.deep.equal({ [T]: [0, 2] });
      expect(result.assignment.get("z-dup")).to.deep.equal({});
      expect(result.assignment.get("m-1")).to.deep.equal({ [T]: [1, 3] });
      expect(result.idle).to.deep.equal([{ memberId: "z-dup", reason: "engine index 0 already owned" }]);
    }
  });

  it("more engines than partitions: the extra engines get nothing, nothing is unassigned", () => {
    const result = staticAssignment(
      range(4).map((k) => member(`m-${k}`, k, 4)),
      [{ topic: T, partitions: [0, 1] }],
    );
    expect(result.assignment.get("m-0")).to.deep.equal({ [T]: [0] });
    expect(result.assignment.get("m-1")).to.deep.equal({ [T]: [1] });
    expect(result.assignment.get("m-2")).to.deep.equal({});
    expect(result.assignment.get("m-3")).to.deep.equal({});
    expect(result.unassigned).to.deep.equal([]);
    expect(result.idle).to.deep.equal([]);
  });

  it("splits every topic by partition, offset by its name's hash (a, c: even; b: odd)", () => {
    const result = staticAssignment(
      [member("m-0", 0, 2), member("m-1", 1, 2)],
      [
        { topic: "a", partitions: [2, 0, 1] },
        { topic: "b", partitions: [0] },
        { topic: "c", partitions: range(5) },
      ],
    );
    expect([ownerIndex("a", 0, 2), ownerIndex("b", 0, 2), ownerIndex("c", 0, 2)]).to.deep.equal([0, 1, 0]);
    expect(result.assignment.get("m-0")).to.deep.equal({ a: [0, 2], c: [0, 2, 4] });
    expect(result.assignment.get("m-1")).to.deep.equal({ a: [1], b: [0], c: [1, 3] });
  });

  it("members without a slot or with another engine count get nothing", () => {
    const result = staticAssignment(
      [member("b-0", 0, 2), { memberId: "c-none" }, member("a-1", 1, 2), member("d-3", 0, 3)],
      [{ topic: T, partitions: range(4) }],
    );
    // The count comes from the smallest memberId with a slot ("a-1": 2 engines).
    expect(result.count).to.equal(2);
    expect(result.assignment.get("b-0")).to.deep.equal({ [T]: [0, 2] });
    expect(result.assignment.get("a-1")).to.deep.equal({ [T]: [1, 3] });
    expect(result.assignment.get("c-none")).to.deep.equal({});
    expect(result.assignment.get("d-3")).to.deep.equal({});
    expect(result.idle.map((i) => i.memberId).sort()).to.deep.equal(["c-none", "d-3"]);
    const nobody = staticAssignment([{ memberId: "x" }], [{ topic: T, partitions: [0, 1] }]);
    expect(nobody.unassigned).to.deep.equal([{ topic: T, partitions: [0, 1] }]);
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
      [{ topic: T, partitions: range(6) }],
    );
    expect(both.assignment.get("m-0")).to.deep.equal({ [T]: [0, 2, 4] });
    expect(both.assignment.get("m-1")).to.deep.equal({ [T]: [1, 3, 5] });
    expect(both.unassigned).to.deep.equal([]);
    // Engine 1 not joined yet: its partitions wait for it instead of going to engine 0 and coming back.
    const first = preferredAssignment([member("m-0", 0, 2)], [{ topic: T, partitions: range(6) }]);
    expect(first.assignment.get("m-0")).to.deep.equal({ [T]: [0, 2, 4] });
    expect(first.unassigned).to.deep.equal([{ topic: T, partitions: [1, 3, 5] }]);
  });

  it("shares each index's partitions between processes with the same id, whatever their engine counts", () => {
    const two = preferredAssignment(
      [member("a-0", 0, 2), member("a-1", 1, 2), member("b-0", 0, 2), member("b-1", 1, 2)],
      [{ topic: T, partitions: range(8) }],
    );
    expect(two.assignment.get("a-0")).to.deep.equal({ [T]: [0, 4] });
    expect(two.assignment.get("b-0")).to.deep.equal({ [T]: [2, 6] });
    expect(two.assignment.get("a-1")).to.deep.equal({ [T]: [1, 5] });
    expect(two.assignment.get("b-1")).to.deep.equal({ [T]: [3, 7] });
    // Process a (2 engines) with process b (1 engine): b owns every partition by its own slot and shares.
    const mixed = preferredAssignment(
      [member("a-0", 0, 2), member("a-1", 1, 2), member("b-0", 0, 1)],
      [
        { topic: T, partitions: range(6) },
        { topic: "u", partitions: range(2) },
      ],
    );
    const owned = [...mixed.assignment.values()].flatMap((a) =>
      Object.entries(a).flatMap(([t, ps]) => ps.map((p) => `${t}/${p}`)),
    );
    expect(owned.sort()).to.deep.equal([...range(6).map((p) => `${T}/${p}`), "u/0", "u/1"]);
    for (const [memberId, a] of mixed.assignment) {
      const slot = memberId === "b-0" ? { index: 0, count: 1 } : { index: Number(memberId.at(-1)), count: 2 };
      for (const [t, ps] of Object.entries(a))
        for (const p of ps) expect(ownsPartition(slot, t, p)).to.equal(true);
      const n = Object.values(a).flat().length;
      expect(n, `${memberId} load`).to.be.within(2, 3);
    }
    expect(mixed.unassigned).to.deep.equal([]);
  });

  it("a process that died: the other process's engines of the same index take its partitions over", () => {
    const after = preferredAssignment(
      [member("b-0", 0, 2), member("b-1", 1, 2)],
      [{ topic: T, partitions: range(4) }],
    );
    expect(after.assignment.get("b-0")).to.deep.equal({ [T]: [0, 2] });
    expect(after.assignment.get("b-1")).to.deep.equal({ [T]: [1, 3] });
    const none = preferredAssignment([{ memberId: "x" }], [{ topic: T, partitions: [0] }]);
    expect(none.idle).to.deep.equal([{ memberId: "x", reason: "no engine index in its metadata" }]);
    expect(none.unassigned).to.deep.equal([{ topic: T, partitions: [0] }]);
  });
});

describe("replicator election: the sitting leader keeps the lead", () => {
  it("keeps the member that leads; without one, the lowest member id; none without members", () => {
    const m = (memberId: string, leading = false) => ({ memberId, leading });
    expect(electLeader([m("b"), m("c", true), m("a")])).to.equal("c");
    expect(electLeader([m("b"), m("c"), m("a")])).to.equal("a");
    expect(electLeader([m("b", true), m("c", true)]), "two claim it (after a split): one").to.equal("b");
    expect(electLeader([])).to.equal(undefined);
  });

  it("the assigner gives the one partition to the member whose subscription says it leads", async () => {
    let leading = false;
    const assigner = stickyLeaderAssigner(() => leading)({
      cluster: {} as never,
      groupId: "g",
      logger: {} as never,
    });
    const subscription = (lead: boolean) => {
      leading = lead;
      return assigner.protocol({ topics: ["election"] }).metadata;
    };
    const members = [
      { memberId: "a", memberMetadata: subscription(false) },
      { memberId: "z", memberMetadata: subscription(true) },
    ];
    const result = await assigner.assign({ members, topics: ["election"] });
    const assigned = Object.fromEntries(
      result.map((r) => [
        r.memberId,
        AssignerProtocol.MemberAssignment.decode(r.memberAssignment)?.assignment,
      ]),
    );
    expect(assigned).to.deep.equal({ a: {}, z: { election: [0] } });
  });
});
