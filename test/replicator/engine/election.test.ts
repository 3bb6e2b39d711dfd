/** The election's reaction to its consumer's events, with a fake consumer (no Kafka). */
import { expect } from "chai";
import type { Datacenter } from "../../../replicator/engine/datacenters.js";
import { ELECTION_TOPIC, Election } from "../../../replicator/engine/election.js";
import { FakeConsumer, fakeContext, fakeKafka } from "./fakes.js";

function homeWith(consumers: FakeConsumer[]): Datacenter {
  return {
    kafka: fakeKafka(consumers),
    admin: { connect: async () => undefined, listTopics: async () => [ELECTION_TOPIC] },
    adminConnected: false,
  } as unknown as Datacenter;
}

describe("engine/election", () => {
  it("leads when assigned partition 0 of the election topic", async () => {
    const consumer = new FakeConsumer({ [ELECTION_TOPIC]: [0] });
    const ctx = fakeContext();
    const election = new Election(ctx, () => homeWith([consumer]));
    await election.start();
    expect(election.leader).to.equal(true);
    expect(election.started).to.equal(true);
    expect(ctx.wakes).to.equal(1);
  });

  it("a crash kafkajs restarts from keeps the consumer (not leading meanwhile)", async () => {
    const consumer = new FakeConsumer({ [ELECTION_TOPIC]: [0] });
    const election = new Election(fakeContext(), () => homeWith([consumer]));
    await election.start();
    consumer.emit(consumer.events.CRASH, { error: new Error("broker gone"), restart: true });
    expect(election.leader).to.equal(false);
    expect(election.started).to.equal(true);
    expect(consumer.calls).not.to.include("disconnect");
  });

  it("a crash without restart ends the consumer, so the next round starts a new one that can lead again", async () => {
    const first = new FakeConsumer({ [ELECTION_TOPIC]: [0] });
    const second = new FakeConsumer({ [ELECTION_TOPIC]: [0] });
    const home = homeWith([first, second]);
    const election = new Election(fakeContext(), () => home);
    await election.start();
    first.emit(first.events.CRASH, { error: new Error("not retriable"), restart: false });
    expect(election.leader).to.equal(false);
    expect(election.started).to.equal(false);
    await election.start();
    expect(election.leader).to.equal(true);
    expect(first.calls).to.include("disconnect");
  });
});
