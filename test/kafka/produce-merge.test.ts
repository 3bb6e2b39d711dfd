/** Merging the produce requests of many senders to one broker (kafka/produce-merge.ts): pure planning, and the merger's turn-of-the-loop batching with an in-memory send. */
import { expect } from "chai";
import {
  mergeTopicData,
  planMergedRequests,
  ProduceMerger,
  type MergeEntry,
} from "../../kafka/produce-merge.js";

const entry = (topic: string, partitions: number[], bytes = 10): MergeEntry => ({
  topicData: [
    { topic, partitions: partitions.map((partition) => ({ partition, firstSequence: 0, messages: [] })) },
  ],
  bytes,
});

describe("produce requests merged across senders", () => {
  it("plans one request for distinct topic-partitions, in order", () => {
    expect(planMergedRequests([entry("a", [0]), entry("b", [0, 1]), entry("c", [0])], 1000)).to.deep.equal([
      [0, 1, 2],
    ]);
  });

  it("starts a new request when a (topic, partition) would be there twice, or past the byte limit", () => {
    expect(
      planMergedRequests([entry("a", [0]), entry("b", [0]), entry("a", [0]), entry("a", [1])], 1000),
    ).to.deep.equal([
      [0, 1],
      [2, 3],
    ]);
    expect(
      planMergedRequests([entry("a", [0], 60), entry("b", [0], 50), entry("c", [0], 500)], 100),
    ).to.deep.equal([[0], [1], [2]]);
  });

  it("merges the topic data by topic, partitions in the senders' order", () => {
    const merged = mergeTopicData([entry("a", [0]), entry("b", [2]), entry("a", [1])]);
    expect(merged.map((t) => [t.topic, t.partitions.map((p) => p.partition)])).to.deep.equal([
      ["a", [0, 1]],
      ["b", [2]],
    ]);
  });

  it("what is handed over in one turn goes as one request per broker; each sender gets the whole answer", async () => {
    const sent: { nodeId: string; topics: string[] }[] = [];
    const merger = new ProduceMerger(async (nodeId, topicData) => {
      sent.push({ nodeId, topics: topicData.map((t) => t.topic) });
      return { ok: topicData.length };
    }, 1000);
    const answers = await Promise.all([
      merger.produce("1", 30_000, entry("a", [0])),
      merger.produce("1", 30_000, entry("b", [0])),
      merger.produce("2", 30_000, entry("c", [0])),
    ]);
    expect(sent).to.deep.equal([
      { nodeId: "1", topics: ["a", "b"] },
      { nodeId: "2", topics: ["c"] },
    ]);
    expect(answers).to.deep.equal([
      { response: { ok: 2 }, partitions: 2 },
      { response: { ok: 2 }, partitions: 2 },
      { response: { ok: 1 }, partitions: 1 },
    ]);
    // A failed request: every sender in it gets the error, with the request's partition count.
    const failing = new ProduceMerger<unknown>(async () => {
      throw new Error("connection lost");
    }, 1000);
    const [x, y] = await Promise.all([
      failing.produce("1", 30_000, entry("a", [0])),
      failing.produce("1", 30_000, entry("b", [0, 1])),
    ]);
    expect(x).to.deep.include({ partitions: 3 });
    expect((y as { error: Error }).error.message).to.equal("connection lost");
  });
});
