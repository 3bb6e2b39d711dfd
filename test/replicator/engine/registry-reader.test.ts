/** The registry reader's reaction to its consumer's events, with a fake consumer (no Kafka). */
import { expect } from "chai";
import type { Kafka } from "kafkajs";
import { RegistryReader } from "../../../replicator/engine/registry-reader.js";
import type { Registration } from "../../../replicator/registry.js";
import { FakeConsumer, fakeContext, fakeKafka } from "./fakes.js";

function readerOf(consumer: FakeConsumer) {
  let gone = 0;
  const reader = new RegistryReader(
    fakeContext(),
    {
      name: "dc1",
      kafka: fakeKafka([consumer]) as unknown as Kafka,
      registrations: new Map<string, Registration>(),
    },
    () => gone++,
  );
  return { reader, gone: () => gone };
}

describe("engine/registry-reader", () => {
  it("a crash kafkajs restarts from keeps the reader", async () => {
    const consumer = new FakeConsumer();
    const { reader, gone } = readerOf(consumer);
    await reader.start();
    consumer.emit(consumer.events.CRASH, { error: new Error("broker gone"), restart: true });
    expect(gone()).to.equal(0);
    expect(consumer.calls).not.to.include("disconnect");
  });

  it("a crash without restart ends the reader, so the next round starts a new one", async () => {
    const consumer = new FakeConsumer();
    const { reader, gone } = readerOf(consumer);
    await reader.start();
    consumer.emit(consumer.events.CRASH, { error: new Error("not retriable"), restart: false });
    expect(gone()).to.equal(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(consumer.calls).to.include("disconnect");
  });
});
