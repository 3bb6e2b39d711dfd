/**
 * The kafkajs patches for many topics: the topic metadata index (kafka/patches/metadata-index.ts) and the
 * linear group bookkeeping (kafka/patches/group-bookkeeping.ts) answer as kafkajs's own code does,
 * against kafkajs's own prototypes (no broker; every consumer group of the suite runs through them).
 */
import { expect } from "chai";
import { createRequire } from "node:module";
import { installKafkajsPatches } from "../../kafka/patches/index.js";
import { byTopic, without } from "../../kafka/patches/group-bookkeeping.js";
import { metadataRefreshDue, topicIndex } from "../../kafka/patches/metadata-index.js";

const require = createRequire(import.meta.url);

const metadata = (topics: string[]) => ({
  topicMetadata: topics.map((topic, i) => ({ topic, partitionMetadata: [{ partitionId: 0, leader: i }] })),
});

describe("kafkajs patch: topic metadata index", () => {
  it("indexes a response once, by name, the first of a name winning (as kafkajs's find)", () => {
    const m = metadata(["a", "b", "a"]);
    const index = topicIndex(m.topicMetadata);
    expect([...index.keys()]).to.deep.equal(["a", "b"]);
    expect(index.get("a")).to.equal(m.topicMetadata[0]);
    expect(topicIndex(m.topicMetadata), "built once").to.equal(index);
    expect(topicIndex(metadata(["a"]).topicMetadata), "a new response, a new index").to.not.equal(index);
  });

  it("a refresh is due without metadata, once expired, or for an unknown topic", () => {
    const m = metadata(["a", "b"]);
    expect(metadataRefreshDue(null, 10, [], 0)).to.equal(true);
    expect(metadataRefreshDue(m, null, [], 0)).to.equal(true);
    expect(metadataRefreshDue(m, 10, ["a"], 11)).to.equal(true);
    expect(metadataRefreshDue(m, 10, ["a", "b"], 5)).to.equal(false);
    expect(metadataRefreshDue(m, 10, ["a", "c"], 5)).to.equal(true);
    expect(metadataRefreshDue(m, 10, [], 5)).to.equal(false);
  });

  it("the patched Cluster and BrokerPool answer as kafkajs's (found, missing, not loaded, refresh)", async () => {
    expect(
      installKafkajsPatches({}).patches.find((p) => p.patch === "topic metadata index")?.state,
    ).to.deep.equal({
      active: true,
    });
    const Cluster = require("kafkajs/src/cluster/index.js") as {
      prototype: { findTopicPartitionMetadata(this: unknown, topic: string): unknown[] };
    };
    const BrokerPool = require("kafkajs/src/cluster/brokerPool.js") as {
      prototype: { refreshMetadataIfNecessary(this: unknown, topics: string[]): Promise<void> };
    };
    const topics = Array.from({ length: 2000 }, (_, i) => `t${i}`);
    const m = metadata(topics);
    const cluster = { brokerPool: { metadata: m } };
    expect(Cluster.prototype.findTopicPartitionMetadata.call(cluster, "t1999")).to.deep.equal([
      { partitionId: 0, leader: 1999 },
    ]);
    expect(Cluster.prototype.findTopicPartitionMetadata.call(cluster, "missing")).to.deep.equal([]);
    expect(() => Cluster.prototype.findTopicPartitionMetadata.call({ brokerPool: { metadata: null } }, "t0"))
      .to.throw()
      .with.property("name", "KafkaJSTopicMetadataNotLoaded");

    const refreshed: string[][] = [];
    const pool = {
      metadata: m,
      metadataExpireAt: Date.now() + 60_000,
      refreshMetadata: async (t: string[]) => void refreshed.push(t),
    };
    await BrokerPool.prototype.refreshMetadataIfNecessary.call(pool, topics);
    expect(refreshed, "every topic known: no refresh").to.deep.equal([]);
    await BrokerPool.prototype.refreshMetadataIfNecessary.call(pool, ["t1", "new"]);
    expect(refreshed).to.deep.equal([["t1", "new"]]);
  });
});

describe("kafkajs patch: linear group bookkeeping", () => {
  it("builds topic → value objects and differences as kafkajs's reduce and arrayDiff do", () => {
    const list = [
      { topic: "a", partitions: [0, 1] },
      { topic: "b", partitions: [2] },
    ];
    expect(byTopic(list, ({ partitions }: { partitions: number[] }) => partitions)).to.deep.equal({
      a: [0, 1],
      b: [2],
    });
    expect(without(["a", "b", "c", "b"], ["b"])).to.deep.equal(["a", "c"]);
    expect(without(["a"], [])).to.deep.equal(["a"]);
  });

  it("SubscriptionState.assign keeps kafkajs's shape, in linear time for 20,000 topics", () => {
    expect(
      installKafkajsPatches({}).patches.find((p) => p.patch === "linear group bookkeeping")?.state,
    ).to.deep.equal({ active: true });
    const SubscriptionState = require("kafkajs/src/consumer/subscriptionState.js") as new () => {
      assign(list: { topic: string; partitions?: number[] }[]): void;
      assigned(): { topic: string; partitions: number[] }[];
      assignedPartitionsByTopic: object;
    };
    const state = new SubscriptionState();
    state.assign([{ topic: "a", partitions: [1, 0] }, { topic: "b" }]);
    expect(state.assignedPartitionsByTopic).to.deep.equal({
      a: { topic: "a", partitions: [1, 0] },
      b: { topic: "b", partitions: [] },
    });
    const many = Array.from({ length: 20_000 }, (_, i) => ({ topic: `t${i}`, partitions: [0] }));
    state.assign(many);
    expect(state.assigned()).to.have.length(20_000);
  });
});
