/**
 * The topic metadata index (kafka/patches/metadata-index.ts): the patched kafkajs lookups answer as
 * kafkajs's own do, against kafkajs's own prototypes with a metadata response in place (no broker).
 */
import { expect } from "chai";
import { createRequire } from "node:module";
import { installKafkajsPatches } from "../../kafka/patches/index.js";
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
